-- The ids the gateway answered with (offer requests, offer commands, config commands),
-- per tenant, recorded before the request or command is published: a poll for an id
-- not here, never issued or issued to another tenant, is 404 rather than 202 for ever.
-- Gateway state, like api_keys: written by the gateway, not projected from a topic.
CREATE TABLE issued_commands (
    tenant_id   text NOT NULL,
    command_id  text NOT NULL,
    kind        text NOT NULL CHECK (kind IN ('request', 'offer_command', 'config_command')),
    issued_at   timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (tenant_id, command_id)
);
