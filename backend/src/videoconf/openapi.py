"""The OpenAPI 3.1 document of the REST part (the WebSocket is in docs/protocol.md)."""

from __future__ import annotations

from typing import Any

from .protocol import ROOM_ID_PATTERN


def _json(schema: dict[str, Any], description: str) -> dict[str, Any]:
    return {"description": description, "content": {"application/json": {"schema": schema}}}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _error(description: str) -> dict[str, Any]:
    return _json(_ref("Error"), description)


_BEARER: list[dict[str, list[str]]] = [{"bearer": []}]

_SCHEMAS: dict[str, Any] = {
    "Error": {
        "type": "object",
        "required": ["error"],
        "properties": {
            "error": {
                "type": "object",
                "required": ["code", "message"],
                "properties": {"code": {"type": "string"}, "message": {"type": "string"}},
            }
        },
    },
    "Status": {
        "type": "object",
        "required": ["status"],
        "properties": {"status": {"type": "string"}},
    },
    "Token": {
        "type": "object",
        "required": ["token", "clientId", "displayName", "expiresAt"],
        "properties": {
            "token": {"type": "string", "description": "HS256 JWT; send as Bearer or to /ws"},
            "clientId": {"type": "string"},
            "displayName": {"type": "string"},
            "expiresAt": {"type": "integer", "description": "Unix time in seconds"},
        },
    },
    "Member": {
        "type": "object",
        "required": ["clientId", "displayName"],
        "properties": {"clientId": {"type": "string"}, "displayName": {"type": "string"}},
    },
    "RoomCreated": {
        "type": "object",
        "required": ["roomId", "path"],
        "properties": {
            "roomId": {"type": "string", "pattern": ROOM_ID_PATTERN},
            "path": {"type": "string", "description": "The room's link path in the web app"},
        },
    },
    "RoomInfo": {
        "type": "object",
        "required": ["roomId", "exists", "participantCount"],
        "properties": {
            "roomId": {"type": "string"},
            "exists": {"type": "boolean"},
            "participantCount": {"type": "integer", "minimum": 0},
            "participants": {
                "type": "array",
                "items": _ref("Member"),
                "description": "Only for a caller who is an admitted member of the room",
            },
        },
    },
    "ClientConfig": {
        "type": "object",
        "required": ["auth", "iceServers", "iceServersExpiresAt", "websocket", "limits"],
        "properties": {
            "auth": {
                "type": "object",
                "required": ["guest", "auth0"],
                "properties": {
                    "guest": {"type": "boolean"},
                    "auth0": {
                        "oneOf": [
                            {"type": "null"},
                            {
                                "type": "object",
                                "properties": {
                                    "domain": {"type": "string"},
                                    "clientId": {"type": ["string", "null"]},
                                    "audience": {"type": ["string", "null"]},
                                },
                            },
                        ]
                    },
                },
            },
            "iceServers": {
                "type": "array",
                "description": "RTCIceServer entries for new RTCPeerConnection({iceServers}): "
                "the STUN servers for anyone; the TURN servers, with credentials, only for a "
                "request with a valid Bearer token",
                "items": {
                    "type": "object",
                    "required": ["urls"],
                    "properties": {
                        "urls": {"type": "array", "items": {"type": "string"}, "minItems": 1},
                        "username": {
                            "type": "string",
                            "description": "TURN REST scheme: <expiry unix seconds>:<clientId>",
                        },
                        "credential": {
                            "type": "string",
                            "description": "base64(HMAC-SHA1(TURN_SECRET, username))",
                        },
                    },
                    "dependentRequired": {
                        "username": ["credential"],
                        "credential": ["username"],
                    },
                },
            },
            "iceServersExpiresAt": {
                "type": ["integer", "null"],
                "description": "Unix time in seconds after which the TURN credentials are refused "
                "for new relays (TURN_TTL after this answer); fetch this again, with the token, "
                "before then; null when no TURN credentials are included",
            },
            "websocket": {
                "type": "object",
                "required": ["path", "subprotocol"],
                "properties": {
                    "path": {"type": "string"},
                    "subprotocol": {"type": "string"},
                    "url": {
                        "type": ["string", "null"],
                        "description": "ws(s)://host[:port] to reach the WebSocket at, when "
                        "not port 8080 of the page's own host (PUBLIC_WS_URL)",
                    },
                },
            },
            "limits": {"type": "object", "additionalProperties": {"type": "number"}},
        },
    },
}


def document() -> dict[str, Any]:
    room_id = {
        "name": "room_id",
        "in": "path",
        "required": True,
        "schema": {"type": "string", "pattern": ROOM_ID_PATTERN},
    }
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "videoconf backend",
            "version": "1.0.0",
            "description": "REST part of the signaling backend. The WebSocket protocol "
            "at /ws/hub/{roomId} is described in docs/protocol.md.",
        },
        "paths": {
            "/health": {
                "get": {
                    "summary": "Liveness",
                    "responses": {"200": _json(_ref("Status"), "The process is alive")},
                }
            },
            "/ready": {
                "get": {
                    "summary": "Readiness",
                    "responses": {
                        "200": _json(_ref("Status"), "Accepting new connections"),
                        "503": _json(_ref("Status"), "Draining before shutdown"),
                    },
                }
            },
            "/metrics": {
                "get": {
                    "summary": "Prometheus metrics",
                    "responses": {
                        "200": {
                            "description": "Prometheus text format",
                            "content": {"text/plain": {"schema": {"type": "string"}}},
                        }
                    },
                }
            },
            "/api/openapi.json": {
                "get": {
                    "summary": "This document",
                    "responses": {"200": _json({"type": "object"}, "OpenAPI 3.1")},
                }
            },
            "/api/auth/guest": {
                "post": {
                    "summary": "Sign in as a guest with a display name",
                    "requestBody": {
                        "required": True,
                        "content": {
                            "application/json": {
                                "schema": {
                                    "type": "object",
                                    "required": ["displayName"],
                                    "properties": {
                                        "displayName": {
                                            "type": "string",
                                            "minLength": 1,
                                            "maxLength": 50,
                                        }
                                    },
                                }
                            }
                        },
                    },
                    "responses": {
                        "200": _json(_ref("Token"), "A short-lived token"),
                        "400": _error("Malformed body or display name"),
                        "403": _error("Guest sign-in is turned off"),
                        "413": _error("Body larger than 16 KiB"),
                    },
                }
            },
            "/api/auth/refresh": {
                "post": {
                    "summary": "A fresh guest token for the same identity",
                    "security": _BEARER,
                    "responses": {
                        "200": _json(_ref("Token"), "A fresh token, same clientId"),
                        "400": _error("Not a guest token"),
                        "401": _error("Missing, invalid or expired token"),
                        "503": _error("The identity provider's keys cannot be fetched"),
                    },
                }
            },
            "/api/rooms": {
                "post": {
                    "summary": "Create a room with an unguessable id",
                    "security": _BEARER,
                    "responses": {
                        "201": _json(_ref("RoomCreated"), "The new room"),
                        "401": _error("Missing, invalid or expired token"),
                        "503": _error("This server holds as many rooms as it may"),
                    },
                }
            },
            "/api/rooms/{room_id}": {
                "get": {
                    "summary": "Whether a room exists and how many are in it",
                    "parameters": [room_id],
                    "responses": {
                        "200": _json(_ref("RoomInfo"), "Names only for members"),
                        "400": _error("Malformed room id"),
                        "401": _error("A token was sent and is invalid"),
                        "503": _error("The identity provider's keys cannot be fetched"),
                    },
                }
            },
            "/api/config": {
                "get": {
                    "summary": "What a browser needs at run time",
                    "description": "Without a token: sign-in modes, STUN servers, limits. "
                    "With a valid Bearer token: TURN servers with short-lived credentials too.",
                    "security": [{}, *_BEARER],
                    "responses": {
                        "200": _json(_ref("ClientConfig"), "Run-time configuration"),
                        "401": _error("A token was sent and is invalid"),
                        "503": _error("The identity provider's keys cannot be fetched"),
                    },
                }
            },
        },
        "components": {
            "schemas": _SCHEMAS,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
