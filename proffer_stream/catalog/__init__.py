"""The catalog: offers a business defines, their limits (one writer each), their use."""
