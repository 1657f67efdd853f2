"""A deployer's tools module, as ``TOOLS_MODULE=sample_tools`` would load it (test helper)."""

from __future__ import annotations

from typing import Any

from vonage_bridge.tools import ToolContext, ToolRegistry


def register(registry: ToolRegistry) -> None:
    @registry.tool(
        "lookup_order",
        "Look up an order by number.",
        {"type": "object", "properties": {"order": {"type": "string"}}, "required": ["order"]},
    )
    async def lookup_order(args: dict[str, Any], ctx: ToolContext) -> dict[str, Any]:
        if args["order"] == "0":
            raise LookupError("no such order")
        return {"order": args["order"], "status": "shipped", "call": ctx.call_uuid}
