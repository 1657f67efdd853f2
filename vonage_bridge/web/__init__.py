"""aiohttp layer: parse the request, call the core or the shell, respond. Nothing else."""
