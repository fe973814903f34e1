"""Chat node: formatting, and whole conversations against a scripted ExecuteTask server in-process."""

import io
import os
import signal
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest
import rclpy
from rclpy.action import ActionServer, CancelResponse, GoalResponse
from rclpy.callback_groups import ReentrantCallbackGroup
from rclpy.executors import MultiThreadedExecutor
from rclpy.node import Node
from rclpy.task import Future
from std_msgs.msg import String

from modular_robot.nodes import chat_node
from modular_robot.nodes.chat_node import ChatNode, repl, run_task, spinning
from modular_robot.planning.chat_format import (
    CANCEL_ACCEPTED,
    CANCEL_GOAL_TERMINATED,
    CANCEL_REJECTED,
    EXIT_FAILED,
    EXIT_NO_SERVER,
    EXIT_SUCCEEDED,
    PLAN_PREFIX,
    STATUS_PREFIX,
    FeedbackView,
    cancel_reply,
    clean_text,
    is_quit,
    no_server_message,
    one_line,
    parse_line,
    refused_reply,
    result_reply,
)
from modular_robot.ros import qos
from modular_robot_interfaces.action import ExecuteTask

ROOT = Path(__file__).resolve().parents[1]
# Cap on every wait for the other side of the conversation; a passing run never reaches it.
WAIT_S = 5.0

PLAN_1 = ("revision 1\n  1. pick(object=red_cube_1)  [running]\n"
          "  2. place(object=red_cube_1, relation=in, target=tray_1)  [pending]")
PLAN_1_DONE = ("revision 1\n  1. pick(object=red_cube_1)  [done]\n"
               "  2. place(object=red_cube_1, relation=in, target=tray_1)  [running]")
PICK_AND_PLACE = [
    ("", 0, "planning"),
    (PLAN_1, 1, "step 1 pre-check ok: red_cube_1 is reachable"),
    ("", 1, ""),  # an empty feedback must neither crash nor clear the plan
    (PLAN_1, 1, "step 1 post-check ok: holding red_cube_1"),
    (PLAN_1_DONE, 2, "step 2 \x1b[2Jpost-check ok:\n red_cube_1 is in tray_1"),
]


# --- formatting, no ROS ------------------------------------------------------------------------

def test_feedback_view_prints_the_plan_when_it_changes_and_each_new_status():
    view = FeedbackView()
    assert view.update("", "planning") == [STATUS_PREFIX + "planning"]
    assert view.update(PLAN_1, "step 1 running") == [PLAN_PREFIX + line for line in PLAN_1.split("\n")] + \
        [STATUS_PREFIX + "step 1 running"]
    assert view.update(PLAN_1, "step 1 running") == []
    assert view.update("", "") == []
    assert view.update(None, 7) == []  # fields of the wrong type count as empty
    assert view.plan == PLAN_1
    assert view.update(PLAN_1_DONE, "step 1 running") == [PLAN_PREFIX + line for line in PLAN_1_DONE.split("\n")]


def test_text_from_the_planner_is_cleaned_for_the_terminal():
    assert clean_text("a\x1b[2J\x07b\r\nc\t d  \n\n") == "a[2Jb\nc     d"
    assert one_line("  step 2\n  post-check\x00 FAILED  ") == "step 2 post-check FAILED"
    assert clean_text(b"bytes") == "" and one_line(None) == ""
    view = FeedbackView()
    assert view.update("rev\x1b]0;pwned\x07 1\n\n", "status\x9b") == [PLAN_PREFIX + "rev]0;pwned 1",
                                                                      STATUS_PREFIX + "status"]


def test_prompt_lines():
    assert parse_line("   ") is None and parse_line("") is None
    assert parse_line("  put the red cube\tin the tray ") == "put the red cube in the tray"
    assert is_quit("quit") and is_quit("EXIT") and not is_quit("quit smoking")


def test_replies_mark_what_did_not_succeed():
    ok = result_reply(True, "red_cube_1 is in tray_1")
    assert (ok.line, ok.text, ok.exit_code) == ("robot> red_cube_1 is in tray_1", "red_cube_1 is in tray_1",
                                                EXIT_SUCCEEDED)
    failed = result_reply(False, "no red cube\nin view")
    assert failed.line == "robot> [failed] no red cube\n       in view" and failed.exit_code == EXIT_FAILED
    assert result_reply(False, "").text and result_reply(True, "\x1b").text == "done"
    assert refused_reply().line.startswith("robot> [refused] ") and refused_reply().exit_code == EXIT_FAILED
    assert cancel_reply(CANCEL_ACCEPTED, 2.0).line == "robot> cancelled"
    for code in (None, CANCEL_REJECTED, CANCEL_GOAL_TERMINATED):
        reply = cancel_reply(code, 2.0)
        assert reply.mark == "not confirmed" and reply.text != "cancelled" and reply.exit_code == EXIT_FAILED
    assert "within 2 s" in cancel_reply(None, 2.0).text
    assert "no task planner is serving 'execute_task'" in no_server_message("/r1/execute_task", 0.5)


def test_an_empty_once_instruction_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as stop:
        chat_node.main(["chat", "--once", "  "])
    assert stop.value.code == 2
    assert "the instruction is empty" in capsys.readouterr().err


# --- conversations over ROS ----------------------------------------------------------------------

class Transcript(io.StringIO):
    """The chat's captured output, which the stand-in planner can wait on."""

    def __init__(self) -> None:
        super().__init__()
        self._changed = threading.Condition()

    def write(self, text: str) -> int:
        with self._changed:
            written = super().write(text)
            self._changed.notify_all()
            return written

    def wait_for(self, text: str, timeout_s: float = WAIT_S) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: text in self.getvalue(), timeout_s)


class PlannerStub(Node):
    """A stand-in task planner: sends scripted feedback, then ends the goal as told; honours cancel.

    Each feedback waits until the chat has printed its status, as a real planner's steps take time,
    so the test sees every line without depending on message timing.
    """

    def __init__(self, transcript: Transcript, **kwargs) -> None:
        super().__init__("planner_stub", **kwargs)
        self.transcript = transcript
        self.script = PICK_AND_PLACE
        self.accept = True
        self.outcome = (True, "red_cube_1 is in tray_1")
        self.hold = False  # keep the goal running after the script until cancelled or released
        self.on_running = lambda: None  # called once the last scripted status was printed
        self.instructions: list[str] = []
        self.cancel_requests = 0
        self.release = threading.Event()
        self.idle = threading.Event()
        self.idle.set()
        self._server = ActionServer(self, ExecuteTask, "execute_task", execute_callback=self._execute,
                                    goal_callback=self._on_goal, cancel_callback=self._on_cancel,
                                    callback_group=ReentrantCallbackGroup())

    def _on_goal(self, goal: ExecuteTask.Goal) -> GoalResponse:
        self.instructions.append(goal.instruction)
        return GoalResponse.ACCEPT if self.accept else GoalResponse.REJECT

    def _on_cancel(self, goal_handle) -> CancelResponse:
        self.cancel_requests += 1
        self.release.set()
        return CancelResponse.ACCEPT

    def _execute(self, goal_handle) -> ExecuteTask.Result:
        self.idle.clear()
        try:
            return self._run(goal_handle)
        finally:
            self.idle.set()

    def _run(self, goal_handle) -> ExecuteTask.Result:
        for plan, step, status in self.script:
            goal_handle.publish_feedback(ExecuteTask.Feedback(plan=plan, step=step, status=status))
            if one_line(status):
                self.transcript.wait_for(one_line(status))
        self.on_running()
        if self.hold:
            self.release.wait(WAIT_S)
        if goal_handle.is_cancel_requested:
            goal_handle.canceled()
            return ExecuteTask.Result(success=False, summary="stopped on request")
        success, summary = self.outcome
        if success:
            goal_handle.succeed()
        else:
            goal_handle.abort()
        return ExecuteTask.Result(success=success, summary=summary)


class Heard:
    """Messages of one String topic, waited on without sleeping."""

    def __init__(self, node: Node, topic: str) -> None:
        self.texts: list[str] = []
        self._changed = threading.Condition()
        node.create_subscription(String, topic, self._on_message, qos.RELIABLE)

    def _on_message(self, msg: String) -> None:
        with self._changed:
            self.texts.append(msg.data)
            self._changed.notify_all()

    def wait_for(self, count: int, timeout_s: float = WAIT_S) -> list[str]:
        with self._changed:
            self._changed.wait_for(lambda: len(self.texts) >= count, timeout_s)
            return list(self.texts)


class Conversation:
    """The chat node and, in the same unique namespace, a planner stub and a probe on chat/*."""

    def __init__(self, with_planner: bool = True) -> None:
        self.namespace = f"/chat_test_{uuid.uuid4().hex[:8]}"
        self.context = rclpy.Context()
        rclpy.init(context=self.context)
        self.out = Transcript()
        self.executor = MultiThreadedExecutor(num_threads=4, context=self.context)
        self.probe = rclpy.create_node("probe", namespace=self.namespace, context=self.context)
        self.user = Heard(self.probe, "chat/user")
        self.robot = Heard(self.probe, "chat/robot")
        self.executor.add_node(self.probe)
        self.planner = None
        if with_planner:
            self.planner = PlannerStub(self.out, namespace=self.namespace, context=self.context)
            self.executor.add_node(self.planner)
        self._stop = Future()
        self._thread = threading.Thread(target=self.executor.spin_until_future_complete, args=(self._stop,),
                                        daemon=True)
        self._thread.start()
        self.chat = ChatNode(namespace=self.namespace, context=self.context)
        self._spinning = spinning(self.chat)
        self._spinning.__enter__()

    def close(self) -> None:
        self._spinning.__exit__(None, None, None)
        if self.planner is not None:
            # A held goal ends before the executor goes: its shutdown does not wait for callbacks.
            self.planner.release.set()
            assert self.planner.idle.wait(WAIT_S)
        self._stop.set_result(None)
        self._thread.join()
        self.executor.shutdown()
        self._thread.join()
        for node in (self.probe, self.planner):
            if node is not None:
                node.destroy_node()
        rclpy.shutdown(context=self.context)


@pytest.fixture
def talk():
    conversation = Conversation()
    yield conversation
    conversation.close()


def test_once_prints_plan_status_and_reply_and_publishes_the_dialogue(talk):
    code = run_task(talk.chat, "put the red cube in the tray", talk.out)
    assert code == EXIT_SUCCEEDED
    assert talk.planner.instructions == ["put the red cube in the tray"]
    lines = talk.out.getvalue().splitlines()
    statuses = [line for line in lines if line.startswith(STATUS_PREFIX)]
    assert statuses == [STATUS_PREFIX + s for s in (
        "planning", "step 1 pre-check ok: red_cube_1 is reachable", "step 1 post-check ok: holding red_cube_1",
        "step 2 [2Jpost-check ok: red_cube_1 is in tray_1")]
    # The plan is printed once per distinct text: PLAN_1 twice in the feedback, once on screen.
    assert lines.count(PLAN_PREFIX + "revision 1") == 2
    assert lines.count(PLAN_PREFIX + "  1. pick(object=red_cube_1)  [running]") == 1
    assert lines.index(PLAN_PREFIX + "  1. pick(object=red_cube_1)  [done]") > \
        lines.index(STATUS_PREFIX + "step 1 post-check ok: holding red_cube_1")
    assert lines[-1] == "robot> red_cube_1 is in tray_1"
    assert talk.user.wait_for(1) == ["put the red cube in the tray"]
    assert talk.robot.wait_for(1) == ["red_cube_1 is in tray_1"]


def test_a_failed_task_is_marked_and_exits_1(talk):
    talk.planner.script = [("", 0, "planning")]
    talk.planner.outcome = (False, "red_cube_1 is not in tray_1 after 3 attempts")
    assert run_task(talk.chat, "put the red cube in the tray", talk.out) == EXIT_FAILED
    assert talk.out.getvalue().splitlines()[-1] == "robot> [failed] red_cube_1 is not in tray_1 after 3 attempts"
    assert talk.robot.wait_for(1) == ["red_cube_1 is not in tray_1 after 3 attempts"]


def test_a_refused_goal_exits_1(talk):
    talk.planner.accept = False
    assert run_task(talk.chat, "fly to the moon", talk.out) == EXIT_FAILED
    assert talk.out.getvalue().startswith("robot> [refused] ")
    assert talk.planner.instructions == ["fly to the moon"]


@pytest.fixture
def terminal_sigint():
    """Python's own SIGINT handler, as in a terminal: a run started in the background (nohup, some CI
    runners) inherits SIGINT ignored, and a Ctrl-C would do nothing."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


def test_ctrl_c_mid_task_cancels_the_goal(talk, terminal_sigint):
    talk.planner.script = PICK_AND_PLACE[:2]
    talk.planner.hold = True
    # The terminal's Ctrl-C: SIGINT to the main thread, which is waiting on the task.
    talk.planner.on_running = lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT)
    assert run_task(talk.chat, "put the red cube in the tray", talk.out) == EXIT_FAILED
    assert talk.planner.cancel_requests == 1
    assert talk.out.getvalue().splitlines()[-1] == "robot> cancelled"
    assert STATUS_PREFIX + "step 1 pre-check ok: red_cube_1 is reachable" in talk.out.getvalue()
    assert talk.robot.wait_for(1) == ["cancelled"]


def test_a_planner_that_goes_away_mid_task_ends_the_wait(talk):
    talk.planner.script = PICK_AND_PLACE[:1]
    talk.planner.hold = True
    # Vanishing from the graph is what the chat watches for; the stub keeps the goal open meanwhile.
    talk.planner.on_running = lambda: setattr(talk.chat.tasks, "server_is_ready", lambda: False)
    assert run_task(talk.chat, "put the red cube in the tray", talk.out) == EXIT_FAILED
    assert talk.out.getvalue().splitlines()[-1] == "robot> [failed] the task planner went away before the task ended"


def test_repl_runs_each_line_and_leaves_on_quit(talk):
    lines = iter(["", "   ", "put the red cube in the tray", "quit", "never sent"])
    prompts = []

    def read_line(prompt: str) -> str:
        prompts.append(prompt)
        return next(lines)

    talk.planner.script = PICK_AND_PLACE[:1]
    assert repl(talk.chat, talk.out, read_line) == EXIT_SUCCEEDED
    assert talk.planner.instructions == ["put the red cube in the tray"]
    assert prompts == ["you> "] * 4
    assert "robot> red_cube_1 is in tray_1" in talk.out.getvalue()
    assert talk.user.wait_for(1) == ["put the red cube in the tray"]


def test_a_stop_word_typed_while_a_task_runs_cancels_it_and_other_lines_wait_their_turn(talk):
    talk.planner.script = PICK_AND_PLACE[:2]
    talk.planner.hold = True
    running = threading.Event()
    talk.planner.on_running = running.set
    lines = iter(["put the red cube in the tray", "pick up the blue cube", "Stop!"])

    def read_line(prompt: str) -> str:
        # Typed while the first task runs; the end of input once the second has answered.
        line = next(lines, None)
        if line is None:
            talk.out.wait_for("robot> red_cube_1 is in tray_1")
            raise EOFError
        if line != "put the red cube in the tray":
            running.wait(WAIT_S)
        return line

    started = time.monotonic()
    assert repl(talk.chat, talk.out, read_line) == EXIT_SUCCEEDED
    assert time.monotonic() - started < WAIT_S
    assert talk.planner.cancel_requests == 1
    assert talk.planner.instructions == ["put the red cube in the tray", "pick up the blue cube"]
    text = talk.out.getvalue()
    assert text.index("robot> cancelled") < text.index("robot> red_cube_1 is in tray_1")
    assert "(after this task, or say 'stop' to cancel it: pick up the blue cube)" in text
    assert talk.user.wait_for(3) == ["put the red cube in the tray", "Stop!", "pick up the blue cube"]


@pytest.mark.parametrize("ending", [EOFError, KeyboardInterrupt])
def test_repl_leaves_cleanly_on_end_of_input_and_ctrl_c_at_the_prompt(talk, ending):
    def read_line(prompt: str) -> str:
        raise ending

    assert repl(talk.chat, talk.out, read_line) == EXIT_SUCCEEDED
    assert talk.planner.instructions == []


def test_no_planner_exits_2_quickly_and_sends_nothing():
    conversation = Conversation(with_planner=False)
    try:
        started = time.monotonic()
        assert run_task(conversation.chat, "hello", conversation.out, server_timeout_s=0.3) == EXIT_NO_SERVER
        assert time.monotonic() - started < 2.0
        text = conversation.out.getvalue()
        assert "no task planner is serving 'execute_task'" in text
        assert f"{conversation.namespace}/execute_task" in text
        assert conversation.user.texts == [] and conversation.robot.texts == []
    finally:
        conversation.close()


def test_modular_robot_chat_once_without_a_planner_exits_2():
    result = subprocess.run(
        [sys.executable, "-m", "modular_robot.cli", "chat", "--once", "hello", "--server-timeout", "0.3",
         "--namespace", f"/chat_nobody_{os.getpid()}"],
        cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == EXIT_NO_SERVER, result.stdout + result.stderr
    assert f"no task planner is serving 'execute_task' (/chat_nobody_{os.getpid()}/execute_task)" in result.stdout
