"""Scripted closed-loop demonstrator for FrankaKitchen-v1.

Each subtask is a generator of end-effector targets (position, orientation, gripper) that reads
the simulator state every step, so a primitive works from wherever the previous one left the arm.
A damped-least-squares controller turns targets into the env's joint-velocity actions, inverting
the env's position actuators (gain, joint damping, gravity) so the arm does not sag.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

import gymnasium as gym
import mujoco
import numpy as np

DT = 0.08  # env step: frame_skip 40 x 2 ms
ACTION_SCALE = 2.0 * DT  # an action of 1 moves the position target this far (rad or m)
OPEN, CLOSED = 0.04, 0.0

SUBTASKS: tuple[str, ...] = (
    "microwave",
    "kettle",
    "bottom burner",
    "top burner",
    "light switch",
    "slide cabinet",
    "hinge cabinet",
)
EXPERT_SEQUENCE: tuple[str, ...] = ("microwave", "kettle", "bottom burner", "light switch")


def frame(approach: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Gripper rotation matrix whose z axis is `approach` and x axis is as close to `up` as allowed.

    The fingers close along the resulting y axis.
    """
    z = approach / np.linalg.norm(approach)
    x = up - z * (up @ z)
    x /= np.linalg.norm(x)
    return np.column_stack([x, np.cross(z, x), z])


def yaw(angle: float) -> np.ndarray:
    """Rotation about the world z axis."""
    c, s = np.cos(angle), np.sin(angle)
    return np.array([[c, -s, 0.0], [s, c, 0.0], [0.0, 0.0, 1.0]])


@dataclass
class Target:
    """One step's command: where the end-effector site should go, its rotation, finger opening."""

    pos: np.ndarray
    rot: np.ndarray
    grip: float = OPEN
    joints: np.ndarray | None = None  # if set, move in joint space to this arm posture instead


class Arm:
    """Damped-least-squares end-effector control through the env's joint-velocity actions.

    The env sets each position target to `noisy_qpos + 2 * action * dt`; the joints then follow a
    first-order lag (gain kp against damping) and sag by gravity / kp. `action` inverts both, so a
    requested joint displacement is what the joint actually moves in one step.
    """

    def __init__(self, env: gym.Env, max_speed: float = 0.03, max_turn: float = 0.15) -> None:
        base = env.unwrapped
        self.model, self.data = base.model, base.data
        self.site = self.model.site("end_effector").id
        kp = self.model.actuator_gainprm[:7, 0]
        self.kp = kp
        self.follow = 1.0 - np.exp(-DT * kp / self.model.dof_damping[:7])
        self.home = base.robot_env.init_qpos[:7].copy()
        bounds = base.robot_env.robot_pos_bound[:7]  # the env clips targets to these too
        self.low = np.maximum(self.model.jnt_range[:7, 0], bounds[:, 0]) + 0.03
        self.high = np.minimum(self.model.jnt_range[:7, 1], bounds[:, 1]) - 0.03
        self.max_speed, self.max_turn = max_speed, max_turn
        self.null_gain = 0.05
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))
        self._integral = np.zeros(3)

    @property
    def pos(self) -> np.ndarray:
        return self.data.site_xpos[self.site]

    @property
    def rot(self) -> np.ndarray:
        return self.data.site_xmat[self.site].reshape(3, 3)

    def errors(self, target: Target) -> tuple[float, float]:
        """Position (m) and rotation (rad, approximately) distance to a target."""
        dr = 0.5 * np.cross(self.rot, target.rot, axis=0).sum(axis=1)
        return float(np.linalg.norm(target.pos - self.pos)), float(np.linalg.norm(dr))

    def action(self, target: Target, q_obs: np.ndarray) -> np.ndarray:
        """The env action moving toward `target` for one step, given the observed robot qpos."""
        q = self.data.qpos[:7]
        if target.joints is not None:
            dq = np.clip(target.joints - q, -0.1, 0.1)
        else:
            dq = self._cartesian_step(target)
        want = np.empty(9)
        want[:7] = q + self.data.qfrc_bias[:7] / self.kp + dq / self.follow
        want[7:] = target.grip
        return np.clip((want - q_obs[:9]) / ACTION_SCALE, -1.0, 1.0)

    def _cartesian_step(self, target: Target) -> np.ndarray:
        dp = target.pos - self.pos
        dist = np.linalg.norm(dp)
        if dist < 0.03:  # integral term: contact forces and residual sag
            self._integral = np.clip(self._integral + 0.3 * dp, -0.05, 0.05)
        if dist > self.max_speed:
            dp *= self.max_speed / dist
        dr = 0.5 * np.cross(self.rot, target.rot, axis=0).sum(axis=1)
        turn = np.linalg.norm(dr)
        if turn > self.max_turn:
            dr *= self.max_turn / turn
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self.site)
        jac = np.vstack([self._jacp[:, :7], self._jacr[:, :7]])
        return self._solve(jac, np.concatenate([dp + self._integral, dr]), self.data.qpos[:7])

    def _solve(self, jac: np.ndarray, twist: np.ndarray, q: np.ndarray) -> np.ndarray:
        """Joint step for a twist, freezing joints the step would push past their limits."""
        free = np.ones(7, dtype=bool)
        for _ in range(3):
            j = jac * free
            inv = j.T @ np.linalg.inv(j @ j.T + 0.05**2 * np.eye(6))
            dq = inv @ twist + (np.eye(7) - inv @ j) @ (self.null_gain * (self.home - q)) * free
            blocked = ((q + dq < self.low) & (dq < 0)) | ((q + dq > self.high) & (dq > 0))
            if not blocked.any():
                break
            free &= ~blocked
        return dq

    def reset_integral(self) -> None:
        self._integral[:] = 0.0


class Scene:
    """Read-only view of the kitchen state that the primitives plan from."""

    def __init__(self, env: gym.Env) -> None:
        base = env.unwrapped
        self.model, self.data = base.model, base.data
        self.arm = Arm(env)

    def site(self, name: str) -> np.ndarray:
        return self.data.site(name).xpos.copy()

    def body(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        b = self.data.body(name)
        return b.xpos.copy(), b.xmat.reshape(3, 3).copy()

    def joint(self, name: str) -> float:
        return float(self.data.joint(name).qpos[0])


Primitive = Callable[[Scene], Iterator[Target]]


def _reach(s: Scene, target: Target, tol: float = 0.01, max_steps: int = 60) -> Iterator[Target]:
    """Hold `target` until the site is within `tol` (m, and 5x that in rad) or time runs out."""
    s.arm.reset_integral()
    for _ in range(max_steps):
        pos_err, rot_err = s.arm.errors(target)
        if pos_err < tol and rot_err < 5 * tol:
            return
        yield target


def _hold(target: Target, steps: int) -> Iterator[Target]:
    for _ in range(steps):
        yield target


def _turn(
    joint: Callable[[], float], goal: float, target: Callable[[float], Target], max_steps: int = 80
) -> Iterator[Target]:
    """Drive an articulated joint toward `goal` through `target(angle)` until reached or stalled."""
    sign = np.sign(goal - joint())
    best, stalled = joint() * sign, 0
    for _ in range(max_steps):
        angle = joint()
        if angle * sign >= goal * sign or stalled > 8:
            return
        stalled = stalled + 1 if angle * sign < best + 0.005 else 0
        best = max(best, angle * sign)
        yield target(angle)


def _back_off(s: Scene, distance: float = 0.12) -> Iterator[Target]:
    """Open the fingers, then withdraw along the gripper's approach axis."""
    here = Target(s.arm.pos.copy(), s.arm.rot.copy(), OPEN)
    yield from _hold(here, 3)
    away = here.pos - distance * here.rot[:, 2]
    yield from _reach(s, Target(away, here.rot, OPEN), tol=0.03, max_steps=20)


# Arm postures (joints 1-7) at each primitive's pre-grasp pose, reached from the reset pose by
# the Cartesian controller. Moving there in joint space first makes a primitive behave the same
# whatever the arm did before, and they double as the controller's null-space posture.
POSTURES = {
    "microwave": (-1.01, -1.74, 1.99, -1.64, -1.04, 1.15, 2.85),
    "kettle": (-0.26, -0.68, 1.29, -3.00, -0.51, 1.63, 0.01),
    "bottom burner": (-0.95, -1.26, 1.38, -2.66, 0.04, 2.07, 1.17),
    "top burner": (-0.78, -1.07, 1.12, -2.59, -0.01, 1.93, 0.92),
    "light switch": (-0.93, -1.20, 1.34, -2.47, 0.06, 1.91, 1.08),
    "slide cabinet": (-0.27, -0.62, 0.34, -2.16, -0.20, 1.55, 0.39),
    "hinge cabinet": (-1.17, -0.87, 1.33, -1.28, -0.04, 0.94, 0.87),
}


def _stage(s: Scene, task: str, max_steps: int = 40) -> Iterator[Target]:
    """Move in joint space to the task's posture (see POSTURES), fingers open."""
    posture = np.array(POSTURES[task])
    s.arm.home = posture
    target = Target(s.arm.pos, s.arm.rot, OPEN, joints=posture)
    for _ in range(max_steps):
        if np.abs(s.data.qpos[:7] - posture).max() < 0.08:
            return
        yield target


def _grasp(s: Scene, task: str, target: Target, standoff: float = 0.12) -> Iterator[Target]:
    """Stage, line up `standoff` short of `target` along its approach axis, go in, close."""
    yield from _stage(s, task)
    approach = target.rot[:, 2]
    yield from _reach(s, Target(target.pos - standoff * approach, target.rot), 0.02, 80)
    yield from _reach(s, Target(target.pos, target.rot), tol=0.008)
    yield from _hold(Target(target.pos, target.rot, CLOSED), 4)


UP = np.array([0.0, 0.0, 1.0])
FORWARD = frame(np.array([0.0, 1.0, 0.0]), UP)  # gripper level, facing +y, fingers along x


def _swing(
    s: Scene, task: str, door: str, joint: str, handle: str, goal: float
) -> Iterator[Target]:
    """Grip a door handle and swing it around the door's hinge to angle `goal`.

    The gripper yaws only half as far as the door: square to a wide-open door is out of reach,
    and the vertical handle bar lets the fingers turn about it.
    """
    hinge, door_rot = s.body(door)
    closed = yaw(-s.joint(joint)) @ door_rot
    handle_local = closed.T @ (s.site(handle) - hinge)
    lead = 0.1 * np.sign(goal)

    def at(angle: float) -> Target:
        approach = yaw(angle / 2) @ closed[:, 1]
        pos = hinge + yaw(angle) @ closed @ handle_local
        return Target(pos, frame(approach, UP), CLOSED)

    yield from _grasp(s, task, at(s.joint(joint)))
    yield from _turn(lambda: s.joint(joint), goal, lambda a: at(a + lead))
    yield from _back_off(s)


def _microwave(s: Scene) -> Iterator[Target]:
    """Swing the microwave door open by its handle."""
    yield from _swing(s, "microwave", "microdoorroot", "microwave", "microhandle_site", -0.8)


def _hinge_cabinet(s: Scene) -> Iterator[Target]:
    """Swing the hinge cabinet's right door open by its handle (the env's goal moves that one)."""
    yield from _swing(
        s, "hinge cabinet", "hingerightdoor", "right_hinge_cabinet", "hinge_site2", 1.5
    )


def _knob(task: str, knob: str, joint: str) -> Primitive:
    """Grip an oven knob's lever and twist the wrist about the knob axis (world +y)."""

    def primitive(s: Scene) -> Iterator[Target]:
        centre = s.site(knob) - [0.0, 0.037, 0.0]  # fingertips stop short of the knob plate

        def twisted(angle: float) -> Target:
            up = np.array([-np.sin(angle), 0.0, np.cos(angle)])  # knob angles are negative
            return Target(centre, frame(np.array([0.0, 1.0, 0.0]), up), CLOSED)

        yield from _grasp(s, task, twisted(s.joint(joint)))
        yield from _turn(lambda: s.joint(joint), -1.1, lambda a: twisted(a - 0.25))
        yield from _back_off(s)

    return primitive


def _light_switch(s: Scene) -> Iterator[Target]:
    """Push the switch lever from its right side to the left with closed fingers."""
    start = s.site("light_site") + [0.045, -0.02, 0.0]
    yield from _stage(s, "light switch")
    yield from _reach(s, Target(start - [0.0, 0.1, 0.0], FORWARD, CLOSED), 0.02, 80)
    yield from _reach(s, Target(start, FORWARD, CLOSED), tol=0.01)
    push = Target(start - [0.14, 0.0, 0.0], FORWARD, CLOSED)
    yield from _turn(lambda: s.joint("light_switch"), -0.7, lambda _: push, max_steps=40)
    yield from _back_off(s)


def _slide_cabinet(s: Scene) -> Iterator[Target]:
    """Grip the handle and slide the door to the right."""
    yield from _grasp(s, "slide cabinet", Target(s.site("slide_site"), FORWARD))

    def pull(_: float) -> Target:
        return Target(s.site("slide_site") + [0.05, 0.0, 0.0], FORWARD, CLOSED)

    yield from _turn(lambda: s.joint("slide_cabinet"), 0.42, pull)
    yield from _back_off(s)


KETTLE_GOAL = np.array([-0.23, 0.75, 1.62])  # the env's goal position for the kettle body


def _kettle(s: Scene) -> Iterator[Target]:
    """Grip the top handle from above-front, lift, carry to the back-left burner, put down."""
    tilt = 0.7  # approach pitched forward from vertical: more reach; the handle is a bar along x
    rot = frame(np.array([0.0, np.sin(tilt), -np.cos(tilt)]), np.array([-1.0, 0.0, 0.0]))
    yield from _grasp(s, "kettle", Target(s.site("kettle_site"), rot))
    yield from _reach(s, Target(s.site("kettle_site") + [0.0, 0.0, 0.07], rot, CLOSED), 0.02, 30)
    offset = s.arm.pos - s.body("kettle")[0]
    above = KETTLE_GOAL + offset + [0.0, 0.0, 0.07]
    yield from _reach(s, Target(above, rot, CLOSED), 0.015, 80)
    yield from _reach(s, Target(above - [0.0, 0.0, 0.065], rot, CLOSED), 0.01, 40)
    yield from _back_off(s)


PRIMITIVES: dict[str, Primitive] = {
    "microwave": _microwave,
    "kettle": _kettle,
    "bottom burner": _knob("bottom burner", "knob2_site", "knob_Joint_2"),
    "top burner": _knob("top burner", "knob4_site", "knob_Joint_4"),
    "light switch": _light_switch,
    "slide cabinet": _slide_cabinet,
    "hinge cabinet": _hinge_cabinet,
}
