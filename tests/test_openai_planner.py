"""The openai backend against a real OpenAI-compatible HTTP server on loopback that records requests."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from modular_robot.core.mapping.objects import MapObject
from modular_robot.core.mapping.text_embedding import TextEmbedder
from modular_robot.planning.dialogue import Dialogue, Turn
from modular_robot.planning.openai_backend import OpenAIPlanner
from modular_robot.planning.plan import Call, PlanRequest, validate_plan

SCENE = [
    MapObject("red_cube_1", "small red cube", "cube", color="red", position=[0.5, 0.1, 0.025], size=[0.05] * 3),
    MapObject("blue_tray_1", "large blue tray", "tray", color="blue", position=[0.45, -0.2, 0.01],
              size=[0.3, 0.2, 0.02]),
    MapObject("green_cylinder_1", "green cylinder", "cylinder", color="green", position=[0.4, 0.3, 0.05],
              size=[0.05, 0.05, 0.1]),
]
VALID = {"kind": "execute", "reply": "Putting the red cube in the tray.", "candidates": [],
         "steps": [{"skill": "pick", "args": {"object": "red_cube_1"}},
                   {"skill": "place", "args": {"object": "red_cube_1", "relation": "in", "target": "blue_tray_1"}}]}


class FakeLLMServer:
    """An HTTP server answering /v1/chat/completions with queued replies, recording each request."""

    def __init__(self) -> None:
        self.replies: list[tuple[int, str]] = []
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's name)
                body = self.rfile.read(int(self.headers["Content-Length"]))
                headers = {k.lower(): v for k, v in self.headers.items()}
                server.requests.append({"path": self.path, "headers": headers, "json": json.loads(body)})
                status, content = server.replies.pop(0)
                if status == 200:
                    payload = {"id": f"c{len(server.requests)}", "object": "chat.completion", "created": 0,
                               "model": "tiny", "choices": [{"index": 0, "finish_reason": "stop",
                                                             "message": {"role": "assistant", "content": content}}],
                               "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}}
                else:
                    payload = {"error": {"message": content, "type": "server_error"}}
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base_url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)


@pytest.fixture
def server() -> Iterator[FakeLLMServer]:
    fake = FakeLLMServer()
    fake.thread.start()
    yield fake
    fake.httpd.shutdown()
    fake.httpd.server_close()


@pytest.fixture(scope="module")
def similarity():
    embedder = TextEmbedder()
    embedder.load()
    return embedder.similarity


def request(text: str = "put the red cube in the tray", **kwargs) -> PlanRequest:
    return PlanRequest(text, SCENE, kwargs.pop("dialogue", Dialogue()), **kwargs)


def planner(server: FakeLLMServer, similarity) -> OpenAIPlanner:
    return OpenAIPlanner(server.base_url, "tiny-planner", api_key="secret", timeout_s=10.0, similarity=similarity)


def test_request_is_well_formed_and_valid_reply_becomes_the_plan(server, similarity):
    server.replies.append((200, json.dumps(VALID)))
    dialogue = Dialogue()
    dialogue.add_turn(Turn("what is on the table?", "a red cube, a blue tray and a green cylinder", "answer"))
    plan = planner(server, similarity).plan(request(dialogue=dialogue))

    assert plan.kind == "execute"
    assert plan.steps == (Call("pick", {"object": "red_cube_1"}),
                          Call("place", {"object": "red_cube_1", "relation": "in", "target": "blue_tray_1"}))
    assert plan.tokens == {"prompt": 100, "completion": 20}
    assert len(server.requests) == 1
    sent = server.requests[0]
    assert sent["path"] == "/v1/chat/completions"
    assert sent["headers"]["authorization"] == "Bearer secret"
    body = sent["json"]
    assert body["model"] == "tiny-planner"
    system, user = body["messages"]
    assert system["role"] == "system" and user["role"] == "user"
    for skill in ("pick", "place", "push", "say"):
        assert f"- {skill}:" in system["content"]
    assert "Id of the object to pick" in system["content"]
    assert "red_cube_1: small red cube (cube, red) at (0.50, 0.10, 0.03) m" in user["content"]
    assert "blue_tray_1" in user["content"]
    # The cylinder is unrelated to the instruction: the scene leaves it out.
    assert "green_cylinder_1" not in user["content"]
    assert "User: what is on the table?" in user["content"]
    assert user["content"].endswith("Instruction: put the red cube in the tray")
    response_format = body["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "plan" and response_format["json_schema"]["strict"] is True
    schema = response_format["json_schema"]["schema"]
    assert schema["type"] == "object" and schema["additionalProperties"] is False
    steps = schema["properties"]["steps"]["items"]["anyOf"]
    pick = next(s for s in steps if s["properties"]["skill"]["enum"] == ["pick"])
    assert pick["properties"]["args"]["properties"]["object"]["enum"] == ["blue_tray_1", "red_cube_1"]


def test_malformed_reply_is_re_asked_once_with_the_error(server, similarity):
    server.replies += [(200, '{"kind": "execute", "steps": [{"skill": "pick"'), (200, json.dumps(VALID))]
    plan = planner(server, similarity).plan(request())

    assert len(server.requests) == 2
    assert plan.kind == "execute" and plan.steps[0] == Call("pick", {"object": "red_cube_1"})
    assert plan.tokens == {"prompt": 200, "completion": 40}
    retry = server.requests[1]["json"]["messages"]
    assert retry[2]["role"] == "assistant" and retry[2]["content"].startswith('{"kind": "execute"')
    assert retry[3]["role"] == "user" and "not valid JSON" in retry[3]["content"]


def test_two_invalid_replies_become_a_refusal_without_steps(server, similarity):
    server.replies += [(200, "I will pick the cube."), (200, "[1, 2, 3]")]
    plan = planner(server, similarity).plan(request())

    assert len(server.requests) == 2
    assert plan.kind == "refuse" and plan.steps == ()
    assert plan.reply.startswith("the language model's plan was invalid: ")
    assert "schema" in plan.reply


@pytest.mark.parametrize("bad_step, why", [
    ({"skill": "fly", "args": {}}, "schema"),
    ({"skill": "pick", "args": {"object": "purple_elephant_1"}}, "schema"),
    ({"skill": "push", "args": {"object": "red_cube_1", "direction": "left", "distance": 2.5}}, "schema"),
    ({"skill": "pick", "args": {"object": "red_cube_1", "force": 10}}, "schema"),
])
def test_schema_violating_plans_are_never_executable(server, similarity, bad_step, why):
    bad = dict(VALID, steps=[bad_step])
    server.replies += [(200, json.dumps(bad)), (200, json.dumps(bad))]
    plan = planner(server, similarity).plan(request())

    assert len(server.requests) == 2
    assert plan.kind == "refuse" and plan.steps == ()
    assert why in plan.reply
    assert validate_plan(plan, SCENE) == []


def test_execute_without_steps_is_rejected_then_corrected(server, similarity):
    # The API form cannot tie steps to kind at its root; validate_plan catches it.
    server.replies += [(200, json.dumps(dict(VALID, steps=[]))), (200, json.dumps(VALID))]
    plan = planner(server, similarity).plan(request())

    assert len(server.requests) == 2
    assert "needs at least one step" in server.requests[1]["json"]["messages"][3]["content"]
    assert plan.kind == "execute" and len(plan.steps) == 2


def test_server_error_is_a_clear_refusal(server, similarity):
    server.replies.append((500, "model overloaded"))
    plan = planner(server, similarity).plan(request())

    assert len(server.requests) == 1
    assert plan.kind == "refuse" and plan.steps == ()
    assert "HTTP 500" in plan.reply and "model overloaded" in plan.reply


def test_unreachable_server_is_a_clear_refusal(similarity):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    plan = OpenAIPlanner(f"http://127.0.0.1:{port}/v1", "tiny", timeout_s=5.0, similarity=similarity).plan(request())

    assert plan.kind == "refuse" and plan.steps == ()
    assert plan.reply.startswith("the language model could not be reached")
