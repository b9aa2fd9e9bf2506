"""The node routes of hived (several hived on one PostgreSQL) as `Call` descriptions."""

from __future__ import annotations

from typing import TYPE_CHECKING

from hivectl.client.routes import Call, _model, _ref

if TYPE_CHECKING:
    from hived.model.nodes import Node, NodeList


class NodeRoutes:
    @staticmethod
    def list_nodes() -> Call[NodeList]:
        return Call("GET", "/nodes", _model("NodeList"))

    @staticmethod
    def get_node(name: str) -> Call[Node]:
        return Call("GET", f"/nodes/{_ref(name)}", _model("Node"))

    @staticmethod
    def node_verb(name: str, verb: str) -> Call[Node]:
        """`drain` or `uncordon`."""
        return Call("POST", f"/nodes/{_ref(name)}/{verb}", _model("Node"))
