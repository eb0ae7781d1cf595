"""The model writer and the offline model server (I/O: HTTP, processes)."""
