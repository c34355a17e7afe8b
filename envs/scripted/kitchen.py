"""Scripted closed-loop demonstrator for FrankaKitchen-v1.

Each subtask is a primitive: a generator of targets (end-effector pose and finger opening, or an
arm posture) that reads the simulator state every step, so it corrects for noise and works from
wherever the previous primitive left the arm. Every primitive first moves in joint space to its
own posture (see POSTURES), then approaches, acts and backs off in Cartesian space.

`Arm` turns targets into the env's joint-velocity actions: damped-least-squares inverse
kinematics, then an exact model of how the env's position servos move the arm in one step
(gain, joint damping, the arm's mass matrix, gravity), so the arm neither sags nor strays.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from itertools import chain, islice
from typing import Any

import gymnasium as gym
import gymnasium_robotics
import mujoco
import numpy as np
from gymnasium_robotics.envs.franka_kitchen.kitchen_env import (
    BONUS_THRESH,
    OBS_ELEMENT_GOALS,
    OBS_ELEMENT_INDICES,
)
from minari.data_collector import EpisodeBuffer

from skillplan.envs.scripted.base import DataKind
from skillplan.envs.scripted.kitchen_plans import (
    EXPERT_SEQUENCE,
    RPL_MIXED,
    SUBTASKS,
    PlanSource,
    UniformPlans,
)
from skillplan.errors import SkillplanError

ACTION_SCALE = 2.0 * 0.08  # an action of 1 puts the servo target this far ahead (env dt 0.08 s)
OPEN, CLOSED = 0.04, 0.0  # finger positions (m)
DAMPING = 0.05  # damped least squares
ROTATION_WEIGHT = 0.4  # of orientation errors against position errors (m) in the IK
FORCE_ALLOWANCE = 1.2  # Cartesian motions may ask this much of the actuators' force limits
NULL_GAIN = 0.05  # pull toward the primitive's posture, per step, in the IK's null space


def frame(approach: np.ndarray, up: np.ndarray) -> np.ndarray:
    """Gripper rotation whose z axis is `approach` and x axis is as close to `up` as allowed.

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


def level(pitch: float, heading: float = 0.0, upright: bool = True) -> np.ndarray:
    """Gripper facing `heading` (yaw from world +y, into the kitchen), tilted `pitch` down.

    Upright, the fingers close horizontally (to grip vertical bars); otherwise vertically, which
    makes the hand narrow sideways (to push levers past obstacles).
    """
    approach = yaw(heading) @ np.array([0.0, np.cos(pitch), -np.sin(pitch)])
    return frame(approach, np.array([0.0, 0.0, 1.0]) if upright else -yaw(heading)[:, 0])


@dataclass
class Target:
    """One step's command: end-effector site position and rotation, and finger opening.

    With `joints` set, the arm moves in joint space to that posture instead of the pose.
    """

    pos: np.ndarray
    rot: np.ndarray
    grip: float = OPEN
    joints: np.ndarray | None = None


class Arm:
    """Turns targets into FrankaKitchen-v1 actions for the arm and fingers.

    The env sets each joint's servo target to `observed qpos + 2 * dt * action`. `action` asks
    for a joint displacement (from damped-least-squares IK, or toward a posture), turns it into
    servo targets with the exact one-step servo response, and scales the motion as a whole into
    the action box and the actuators' force limits, so the end-effector's path stays straight.
    """

    def __init__(self, env: gym.Env, max_speed: float = 0.03, max_turn: float = 0.15) -> None:
        base = env.unwrapped
        self.model, self.data = base.model, base.data
        self.max_speed, self.max_turn = max_speed, max_turn  # per step: m, rad
        # The IK's null-space reference: the reset posture until a primitive sets its own.
        self.posture = base.robot_env.init_qpos[:7].copy()
        bounds = base.robot_env.robot_pos_bound[:7]  # the env clips servo targets to these too
        self.low = np.maximum(self.model.jnt_range[:7, 0], bounds[:, 0]) + 0.03
        self.high = np.minimum(self.model.jnt_range[:7, 1], bounds[:, 1]) - 0.03
        self._site = self.model.site("end_effector").id
        self._kp = self.model.actuator_gainprm[:7, 0]
        self._force = self.model.actuator_forcerange[:7, 1]
        self._substeps = base.robot_env.frame_skip
        self._mass = np.zeros((self.model.nv, self.model.nv))
        self._jacp = np.zeros((3, self.model.nv))
        self._jacr = np.zeros((3, self.model.nv))
        self._integral = np.zeros(3)

    @property
    def pos(self) -> np.ndarray:
        return self.data.site_xpos[self._site].copy()

    @property
    def rot(self) -> np.ndarray:
        return self.data.site_xmat[self._site].reshape(3, 3).copy()

    def errors(self, target: Target) -> tuple[float, float]:
        """Position (m) and rotation (rad, about) distance from the end-effector to `target`."""
        turn = 0.5 * np.cross(self.rot, target.rot, axis=0).sum(axis=1)
        return float(np.linalg.norm(target.pos - self.pos)), float(np.linalg.norm(turn))

    def reset_integral(self) -> None:
        self._integral[:] = 0.0

    def action(self, target: Target, q_obs: np.ndarray) -> np.ndarray:
        """The env action toward `target` for one step, given the env's observation vector
        (whose first 9 entries are the noisy robot qpos the env builds servo targets from)."""
        q = self.data.qpos[:7]
        if target.joints is None:
            dq, force = self._ik_step(target), FORCE_ALLOWANCE * self._force
        else:  # joint-space moves need no straight path: full speed
            dq, force = np.clip(target.joints - q, -0.1, 0.1), np.inf
        gain, carry = self._response()
        bias = self.data.qfrc_bias[:7]
        # Servo offsets (servo target less joint position and gravity sag): one that stops the
        # arm where it is, one more that moves it by dq.
        stop = -np.linalg.solve(gain, carry @ self.data.qvel[:7])
        move = np.linalg.solve(gain, dq)
        idle = q_obs[:7] - q - bias / self._kp  # the offset an action of zero gives
        low = np.maximum(idle - ACTION_SCALE, (-force - bias) / self._kp)
        high = np.minimum(idle + ACTION_SCALE, (force - bias) / self._kp)
        room = np.where(move > 0, high - stop, stop - low)
        speed = np.abs(move)
        scale = np.min(room / np.maximum(speed, 1e-9), initial=1.0, where=speed > 1e-9)
        action = np.empty(9)
        action[:7] = (stop + np.clip(scale, 0.0, 1.0) * move - idle) / ACTION_SCALE
        action[7:] = (target.grip - q_obs[7:9]) / ACTION_SCALE
        return np.clip(action, -1.0, 1.0)

    def _response(self) -> tuple[np.ndarray, np.ndarray]:
        """How one env step moves the arm: by `gain @ offset + carry @ joint velocity`.

        Exact for the servos (gain kp, joint damping, the arm's current mass matrix) under
        MuJoCo's Euler steps with implicit damping, ignoring contacts and the fingers.
        """
        h = self.model.opt.timestep
        mujoco.mj_fullM(self.model, self.data, self._mass)
        mass = self._mass[:7, :7]
        soft = np.linalg.inv(mass + h * np.diag(self.model.dof_damping[:7]))
        kp = np.diag(self._kp)
        substep = np.block(
            [[np.eye(7) - h * h * soft @ kp, h * soft @ mass], [-h * soft @ kp, soft @ mass]]
        )
        step = np.linalg.matrix_power(substep, self._substeps)
        return np.eye(7) - step[:7, :7], step[:7, 7:]

    def _ik_step(self, target: Target) -> np.ndarray:
        """Joint displacement that moves the end-effector one step toward `target`."""
        dp = target.pos - self.data.site_xpos[self._site]
        dist = np.linalg.norm(dp)
        if dist < 0.03:  # integral term: contact forces and loads the servo model leaves out
            self._integral = np.clip(self._integral + 0.3 * dp, -0.02, 0.02)
        dp *= min(1.0, self.max_speed / max(dist, 1e-9))
        rot = self.data.site_xmat[self._site].reshape(3, 3)
        dr = 0.5 * np.cross(rot, target.rot, axis=0).sum(axis=1)
        dr *= min(1.0, self.max_turn / max(np.linalg.norm(dr), 1e-9))
        mujoco.mj_jacSite(self.model, self.data, self._jacp, self._jacr, self._site)
        jac = np.vstack([self._jacp[:, :7], ROTATION_WEIGHT * self._jacr[:, :7]])
        twist = np.concatenate([dp + self._integral, ROTATION_WEIGHT * dr])
        q = self.data.qpos[:7]
        pull = NULL_GAIN * (self.posture - q)
        free = np.ones(7, dtype=bool)
        for _ in range(3):  # freeze the joints the step would push past their limits
            j = jac * free
            inverse = j.T @ np.linalg.inv(j @ j.T + DAMPING**2 * np.eye(6))
            dq = inverse @ twist + (np.eye(7) - inverse @ j) @ pull * free
            blocked = ((q + dq < self.low) & (dq < 0)) | ((q + dq > self.high) & (dq > 0))
            if not blocked.any():
                break
            free &= ~blocked
        return dq


class Scene:
    """The kitchen's state as the primitives read it, and the arm they drive."""

    def __init__(self, env: gym.Env) -> None:
        base = env.unwrapped
        self.model, self.data = base.model, base.data
        self.arm = Arm(env)

    def site(self, name: str) -> np.ndarray:
        return self.data.site(name).xpos.copy()

    def body(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """World position and rotation matrix of a body."""
        b = self.data.body(name)
        return b.xpos.copy(), b.xmat.reshape(3, 3).copy()

    def joint(self, name: str) -> float:
        return float(self.data.joint(name).qpos[0])


Primitive = Callable[[Scene], Iterator[Target]]


# ---- motions that primitives are made of ----


def _reach(s: Scene, target: Target, tol: float = 0.01, max_steps: int = 60) -> Iterator[Target]:
    """Hold `target` until within `tol` (m, and 5x that in rad), stalled, or out of time."""
    s.arm.reset_integral()
    best, stalled = np.inf, 0
    for _ in range(max_steps):
        pos_err, rot_err = s.arm.errors(target)
        if (pos_err < tol and rot_err < 5 * tol) or stalled > 10:
            return
        stalled = stalled + 1 if pos_err > best - 0.001 else 0
        best = min(best, pos_err)
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
    here = Target(s.arm.pos, s.arm.rot, OPEN)
    yield from _hold(here, 3)
    away = Target(here.pos - distance * here.rot[:, 2], here.rot, OPEN)
    yield from _reach(s, away, tol=0.03, max_steps=20)


# Arm postures (joints 1-7) at each primitive's first approach pose in the reset scene, solved
# offline by damped-least-squares IK from the reset posture with a null-space pull toward the
# middle of the joint ranges. Moving there in joint space first makes a primitive start the same
# whatever the arm did before; they double as the IK's null-space reference.
POSTURES = {
    "microwave": (-1.11, -1.24, 2.09, -1.85, 0.65, 1.54, 0.72),
    "kettle": (-0.29, -0.93, 1.75, -2.86, 1.35, 1.36, 1.80),
    "bottom burner": (-0.72, -0.71, 1.15, -2.36, -0.09, 1.52, 0.79),
    "top burner": (-0.91, -1.06, 1.09, -2.36, -0.40, 1.81, -0.28),
    "light switch": (-0.90, -0.97, 1.42, -2.40, 0.62, 1.83, 0.40),
    "slide cabinet": (0.22, -0.49, 0.11, -1.97, -0.61, 1.07, -0.87),
    "hinge cabinet": (-1.03, -0.88, 1.33, -1.50, -0.25, 1.08, 1.07),
}


def _stage(s: Scene, task: str, max_steps: int = 40) -> Iterator[Target]:
    """Move in joint space to the task's posture, fingers open. It ends only once the arm is
    slow too: an arm still moving would carry on sideways into the Cartesian approach."""
    s.arm.posture = np.array(POSTURES[task])
    target = Target(s.arm.pos, s.arm.rot, OPEN, joints=s.arm.posture)
    for _ in range(max_steps):
        near = np.abs(s.data.qpos[:7] - s.arm.posture).max() < 0.08
        if near and np.abs(s.data.qvel[:7]).max() < 0.3:
            return
        yield target


def _grasp(s: Scene, task: str, target: Target, standoff: float = 0.12) -> Iterator[Target]:
    """Stage, line up `standoff` short of `target` along its approach axis, go in, close."""
    yield from _stage(s, task)
    approach = target.rot[:, 2]
    yield from _reach(s, Target(target.pos - standoff * approach, target.rot), 0.02, 80)
    yield from _reach(s, Target(target.pos, target.rot), tol=0.008)
    yield from _hold(Target(target.pos, target.rot, CLOSED), 4)


def _swing(
    s: Scene, task: str, door: str, handle: str, goal: float, grip: tuple[float, float, float]
) -> Iterator[Target]:
    """Grip a door's vertical handle bar and swing it around the door's hinge to angle `goal`.

    `grip` = (height on the handle from its site, gripper pitch, fraction of the door's turn
    the gripper follows in yaw), chosen so the whole swing stays inside the arm's joint limits:
    the fingers can turn about the bar, and square to a wide-open door is out of reach.
    """
    qpos = s.model.jnt_qposadr[s.model.body(door).jntadr[0]]
    angle_now = lambda: float(s.data.qpos[qpos])  # noqa: E731
    hinge, door_rot = s.body(door)
    closed = yaw(-angle_now()) @ door_rot
    handle_local = closed.T @ (s.site(handle) - hinge) + [0.0, 0.0, grip[0]]
    heading = np.arctan2(-closed[0, 1], closed[1, 1])  # the closed door's inward normal

    def at(angle: float) -> Target:
        pos = hinge + yaw(angle) @ closed @ handle_local
        return Target(pos, level(grip[1], heading + grip[2] * angle), CLOSED)

    yield from _grasp(s, task, at(angle_now()))
    lead = 0.1 * np.sign(goal - angle_now())  # aim a little ahead of the door
    yield from _turn(angle_now, goal, lambda a: at(a + lead))
    yield from _back_off(s)


FINGERTIP = 0.035  # closed fingertips' centre beyond the end-effector site, along the approach

Contact = Callable[[float, float], np.ndarray]


def _push(
    s: Scene, task: str, joint: str, goal: float, contact: Contact, rot: np.ndarray, lead: float
) -> Iterator[Target]:
    """Drive `joint` to `goal` by pushing a lever's side with the closed fingertips.

    `contact(angle, clearance)` is where the fingertips touch the lever's trailing side when the
    joint is at `angle`, backed off by `clearance`. The push aims `lead` ahead of the lever.
    """
    tip = FINGERTIP * rot[:, 2]
    start = contact(s.joint(joint), 0.02) - tip
    yield from _stage(s, task)
    yield from _reach(s, Target(start - 0.1 * rot[:, 2], rot, CLOSED), 0.02, 80)
    yield from _reach(s, Target(start, rot, CLOSED), tol=0.01)
    lead *= np.sign(goal - s.joint(joint))
    press = lambda a: Target(contact(a + lead, 0.0) - tip, rot, CLOSED)  # noqa: E731
    yield from _turn(lambda: s.joint(joint), goal, press)
    yield from _back_off(s)


# ---- the seven primitives ----


def _microwave(s: Scene) -> Iterator[Target]:
    """Swing the microwave door open by the top of its handle, gripper pitched down."""
    yield from _swing(s, "microwave", "microdoorroot", "microhandle_site", -0.8, (0.08, 0.6, 0.25))


def _hinge_cabinet(s: Scene) -> Iterator[Target]:
    """Swing the right door of the hinge cabinet open (the env's goal turns that one), then get
    clear below it: the open door hangs across the arm's way to the rest of the kitchen.

    1.3 rad, short of the goal's 1.45 but well inside its 0.3 tolerance, keeps the door's handle
    out of the way to the slide cabinet's.
    """
    yield from _swing(s, "hinge cabinet", "hingerightdoor", "hinge_site2", 1.3, (-0.07, 0.0, 0.5))
    yield from _reach(s, Target(np.array([0.0, 0.25, 2.3]), s.arm.rot), 0.03, 30)


def _knob(
    task: str, knob: str, joint: str, upright: bool, pitch: float, lever: float
) -> Primitive:
    """Turn an oven knob by pushing the side of its lever, `lever` out from the knob's axis.

    Upright fingers are thin vertically (clear of the knob above); rolled ones narrow sideways
    (clear of an open hinge-cabinet door).
    """

    def turn_knob(s: Scene) -> Iterator[Target]:
        centre = s.site(knob) - [0.0, 0.005, 0.0]

        def contact(angle: float, clearance: float) -> np.ndarray:
            turned = -angle  # the lever's top swings toward +x as the angle goes negative
            radial = np.array([np.sin(turned), 0.0, np.cos(turned)])
            tangent = np.array([np.cos(turned), 0.0, -np.sin(turned)])
            return centre + lever * radial - (0.03 + clearance) * tangent  # lever + finger widths

        yield from _push(s, task, joint, -1.0, contact, level(pitch, upright=upright), 0.25)

    return turn_knob


def _light_switch(s: Scene) -> Iterator[Target]:
    """Push the switch lever's tip from its right side to the left."""
    pivot = s.body("lightswitchroot")[0]
    arm = yaw(-s.joint("light_switch")) @ (s.site("light_site") - pivot)

    def contact(angle: float, clearance: float) -> np.ndarray:
        tip = yaw(angle) @ arm
        ahead = np.array([tip[1], -tip[0], 0.0]) / np.linalg.norm(tip[:2])
        return pivot + tip - (0.04 + clearance) * ahead  # lever radius + finger half-width

    yield from _push(s, "light switch", "light_switch", -0.7, contact, level(0.1), 0.25)


def _slide_cabinet(s: Scene) -> Iterator[Target]:
    """Push the door to the right by its handle, fingertips hooked behind the handle bar."""
    handle = s.site("slide_site") + [0.0, 0.02, -0.07]  # behind the bar, below its middle
    opened = s.joint("slide_cabinet")

    def contact(position: float, clearance: float) -> np.ndarray:
        return handle + [position - opened - 0.04 - clearance, 0.0, 0.0]  # bar + finger widths

    yield from _push(
        s, "slide cabinet", "slide_cabinet", 0.42, contact, level(0.3, upright=False), 0.03
    )


KETTLE_GOAL = np.array([-0.23, 0.75, 1.62])  # the env's goal position for the kettle body


def _kettle(s: Scene) -> Iterator[Target]:
    """Grip the top handle from above-front, lift, carry to the back-left burner, put down."""
    tilt = 0.7  # approach pitched forward from vertical: more reach; the handle is a bar along x
    rot = frame(np.array([0.0, np.sin(tilt), -np.cos(tilt)]), np.array([1.0, 0.0, 0.0]))
    yield from _grasp(s, "kettle", Target(s.site("kettle_site"), rot))
    yield from _reach(s, Target(s.site("kettle_site") + [0.0, 0.0, 0.07], rot, CLOSED), 0.02, 30)
    offset = s.arm.pos - s.body("kettle")[0]  # where the kettle hangs from the gripper
    above = KETTLE_GOAL + offset + [0.0, 0.0, 0.07]
    yield from _reach(s, Target(above, rot, CLOSED), 0.015, 80)
    yield from _reach(s, Target(above - [0.0, 0.0, 0.065], rot, CLOSED), 0.01, 40)
    yield from _back_off(s)


PRIMITIVES: dict[str, Primitive] = {
    "microwave": _microwave,
    "kettle": _kettle,
    # Low on the bottom lever, clear of the top knob; rolled at the top, clear of an open door.
    "bottom burner": _knob("bottom burner", "knob2_site", "knob_Joint_2", True, 0.4, 0.015),
    "top burner": _knob("top burner", "knob4_site", "knob_Joint_4", False, 0.0, 0.03),
    "light switch": _light_switch,
    "slide cabinet": _slide_cabinet,
    "hinge cabinet": _hinge_cabinet,
}


def is_done(data: mujoco.MjData, task: str) -> bool:
    """Whether `task` is in its goal state, judged as FrankaKitchen-v1 judges it."""
    gap = data.qpos[OBS_ELEMENT_INDICES[task]] - OBS_ELEMENT_GOALS[task]
    return bool(np.linalg.norm(gap) < BONUS_THRESH)


def primitive(task: str, scene: Scene, tries: int = 2) -> Iterator[Target]:
    """The closed-loop target stream that performs subtask `task` in `scene`'s kitchen.

    A primitive that ends without its subtask done (a slipped grip, say) starts over, up to
    `tries` times in all.
    """
    if task not in PRIMITIVES:
        raise SkillplanError(
            f"Unknown kitchen subtask '{task}'. The scripted demonstrator knows these seven: "
            + ", ".join(SUBTASKS) + "."
        )
    return _persist(task, scene, tries)


def _persist(task: str, scene: Scene, tries: int) -> Iterator[Target]:
    for _ in range(tries):
        yield from PRIMITIVES[task](scene)
        if is_done(scene.data, task):
            return


def _unless_done(task: str, scene: Scene) -> Iterator[Target]:
    if not is_done(scene.data, task):
        yield from primitive(task, scene)


# ---- rollouts and the demonstrator ----

MAX_EPISODE_STEPS = 450
# Std of Gaussian noise on the arm joints' actions. General data keeps it at 0.08: per-step noise
# can't be reconstructed, and at 0.15 it alone held the held-out action MSE above 0.01.
EXPERT_NOISE, GENERAL_NOISE = 0.05, 0.08
ABANDON_PROB = 0.15  # general data: chance a primitive is cut short and the next one begun


def _stack(items: list[Any], space: gym.Space | None = None) -> Any:
    """Per-step nested dicts of arrays as one nested dict of stacked arrays (in `space`'s dtypes
    and key order when given). Copies, so the env's reused arrays are safe to stack."""
    if isinstance(items[0], dict):
        keys = space.spaces.keys() if space is not None else items[0].keys()
        return {k: _stack([i[k] for i in items], space and space.spaces[k]) for k in keys}
    return np.array(items, dtype=space.dtype if space is not None else None)


def _flags(info: dict[str, Any]) -> dict[str, dict[str, bool]]:
    """The env's task lists as per-subtask booleans, so they stack into arrays."""
    return {
        key: {task: task in info.get(key, ()) for task in SUBTASKS}
        for key in ("step_task_completions", "episode_task_completions")
    }


@dataclass
class Attempt:
    """One primitive within a rollout: its first and end step (exclusive), and the step its
    subtask first reached the goal state (None if it never did)."""

    task: str
    start: int
    end: int
    done_at: int | None = None


@dataclass
class Rollout:
    """Everything one scripted rollout saw and did, step by step (observations/infos: T+1)."""

    observations: list[dict[str, Any]]
    infos: list[dict[str, dict[str, bool]]]
    actions: list[np.ndarray] = field(default_factory=list)
    rewards: list[float] = field(default_factory=list)
    terminations: list[bool] = field(default_factory=list)
    truncations: list[bool] = field(default_factory=list)
    attempts: list[Attempt] = field(default_factory=list)

    @property
    def ended(self) -> bool:
        return bool(self.actions) and (self.terminations[-1] or self.truncations[-1])


def rollout(
    env: gym.Env,
    seed: int,
    tasks: Sequence[str],
    rng: np.random.Generator,
    noise: float = 0.0,
    cuts: Sequence[int | None] | None = None,
    resume: bool = False,
) -> Rollout:
    """Reset `env` with `seed`, then perform `tasks` in order until done or the env ends.

    `noise` is the std of Gaussian noise added to the arm joints' actions (drawn from `rng`);
    `cuts[i]`, if not None, abandons task i after that many steps: the gripper lets go and
    withdraws, and the next task begins; with `resume`, task i begins again first, unless the
    abandoned attempt got it done.
    """
    obs, info = env.reset(seed=int(seed))
    scene = Scene(env)
    run = Rollout([obs], [_flags(info)])
    for task, cut in zip(tasks, cuts or [None] * len(tasks), strict=True):
        attempt = Attempt(task, len(run.actions), len(run.actions))
        run.attempts.append(attempt)
        targets = primitive(task, scene)
        if cut is not None:
            again = _unless_done(task, scene) if resume else ()
            targets = chain(islice(targets, cut), _back_off(scene), again)
        for target in targets:
            action = scene.arm.action(target, obs["observation"])
            action[:7] += noise * rng.standard_normal(7)  # the fingers stay noise-free
            action = np.clip(action, -1.0, 1.0)
            obs, reward, terminated, truncated, info = env.step(action)
            run.observations.append(obs)
            run.infos.append(_flags(info))
            run.actions.append(action)
            run.rewards.append(float(reward))
            run.terminations.append(bool(terminated))
            run.truncations.append(bool(truncated))
            attempt.end = len(run.actions)
            if attempt.done_at is None and is_done(scene.data, task):
                attempt.done_at = attempt.end
            if run.ended:
                return run
    return run


@dataclass(frozen=True)
class KitchenDemonstrator:
    """`ScriptedDemonstrator` for FrankaKitchen-v1.

    General episodes perform the subtasks `plans` draws, with action noise, abandoning some
    midway (then beginning them again if the plan source says so); expert episodes perform
    EXPERT_SEQUENCE with little noise. `infos` hold, per step, which subtasks completed in that
    step and so far (`step_task_completions`, `episode_task_completions`, each a dict of bools).
    """

    name: str = "kitchen-scripted"
    plans: PlanSource = RPL_MIXED
    default_episodes: dict[DataKind, int] = field(
        default_factory=lambda: {"general": 600, "expert": 60}
    )

    def dataset_metadata(self, kind: DataKind) -> dict[str, str]:
        """Extra Minari metadata: the plan table the episodes were drawn from, as JSON."""
        if kind == "expert":
            return {"plan_table": json.dumps([{"tasks": list(EXPERT_SEQUENCE), "weight": 1.0}])}
        return {"plan_table": self.plans.describe()}

    def make_env(self, kind: DataKind) -> gym.Env:
        """All seven subtasks count in general data; the expert's four in expert data."""
        gym.register_envs(gymnasium_robotics)
        tasks = SUBTASKS if kind == "general" else EXPERT_SEQUENCE
        return gym.make(
            "FrankaKitchen-v1", max_episode_steps=MAX_EPISODE_STEPS, tasks_to_complete=list(tasks)
        )

    def episode(
        self, env: gym.Env, seed: int, kind: DataKind, quantile: float | None = None
    ) -> EpisodeBuffer:
        """One episode, fully determined by `seed` and `quantile` (where the plan table is read;
        see `PlanTable.draw`); the last step is terminated or truncated."""
        rng = np.random.default_rng(seed)
        if kind == "expert":
            run = rollout(env, seed, EXPERT_SEQUENCE, rng, EXPERT_NOISE)
        else:
            tasks = self.plans.draw(rng, quantile)
            cuts = [rng.integers(5, 60) if rng.random() < ABANDON_PROB else None for _ in tasks]
            run = rollout(env, seed, tasks, rng, GENERAL_NOISE, cuts, self.plans.resumes_abandoned)
        run.truncations[-1] = not run.terminations[-1]
        return EpisodeBuffer(
            id=None,
            seed=int(seed),
            observations=_stack(run.observations, env.observation_space),
            actions=np.array(run.actions, dtype=np.float32),
            rewards=np.array(run.rewards, dtype=np.float64),
            terminations=np.array(run.terminations, dtype=bool),
            truncations=np.array(run.truncations, dtype=bool),
            infos=_stack(run.infos),
        )


DEMONSTRATOR = KitchenDemonstrator()
UNIFORM_DEMONSTRATOR = KitchenDemonstrator("kitchen-scripted-uniform", UniformPlans())
