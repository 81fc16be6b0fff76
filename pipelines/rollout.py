"""Roll a registry alias out to the running servers, and roll `champion` back, without hands.

A rollout exports the alias's version into the servers' bundle directory (checked: it must load and
score its own example before it replaces the old one), asks each server to reload it (the admin
route, with GIGMATCH_ADMIN_KEY), and checks that `/v1/model` then reports the new version. If any
server refuses it or reports another version, the bundle that served before is put back and the
servers reload it, so the old model keeps serving and the command fails naming the server.

The challenger goes out the same way to the servers' shadow (`shadow=True`): exported into the
bundle their GIGMATCH_CHALLENGER_BUNDLE_PATH names (GIGMATCH_ROLLOUT_CHALLENGER_PATH here), reloaded,
and checked on their `/metrics` (`gigmatch_challenger_info`), since it never answers a request.

A rollback moves `champion` to the version that held it before (the registry keeps the history in
the registered model's `champion_history` tag, appended each time the alias moves) and rolls that
out. The Prefect flow `gigmatch-rollout` is the same step for the training flow to call after a
promotion, or to run alone.
"""

from __future__ import annotations

import json
import re
import shutil
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from prefect import flow, get_run_logger

from gigmatch.errors import GigmatchError
from gigmatch.files import staged_directory
from gigmatch.training.promotion import CHALLENGER, CHAMPION
from pipelines import tracking
from pipelines.export import export_bundle
from pipelines.settings import TrackingSettings, get_rollout_settings, get_tracking_settings

TIMEOUT = 30.0  # seconds per call to a server


class RolloutError(GigmatchError):
    """A server did not take the new bundle (it keeps serving the old one), or there is nothing to roll back to."""


@dataclass(frozen=True)
class Rollout:
    model_name: str
    version: str
    previous_version: str | None
    servers: tuple[str, ...]


def roll_out(
    model_name: str,
    alias: str,
    bundle: Path,
    servers: Sequence[str],
    admin_key: str | None,
    settings: TrackingSettings,
    log: Callable[[str], None] = print,
    shadow: bool = False,
) -> Rollout:
    """Export `alias` into `bundle`, reload every server, check each serves it (or shadows it, with
    `shadow`: `bundle` is then the servers' challenger bundle); put the old one back if not."""
    if servers and not admin_key:
        raise RolloutError("GIGMATCH_ADMIN_KEY is not set: the servers' reload route needs it")
    previous = _keep_previous(bundle)
    old_version = _version_in(previous) if previous else None
    exported = export_bundle(model_name, alias, bundle, settings)  # raises, and changes nothing, if it is bad
    log(f"exported {model_name} version {exported.version} ({alias}) to {bundle}")
    try:
        for server in servers:
            _reload(server, admin_key or "", exported.version, shadow)
            log(f"{server}: {'shadowing' if shadow else 'serving'} version {exported.version}")
    except RolloutError:
        if previous is not None:
            with staged_directory(bundle) as staging:
                shutil.copytree(previous, staging, dirs_exist_ok=True)
            for server in servers:  # those that took the new one go back; the others never left the old
                try:
                    _reload(server, admin_key or "", old_version, shadow)
                except RolloutError as exc:
                    log(f"{server}: could not reload the previous bundle either: {exc}")
        raise
    return Rollout(model_name, exported.version, old_version, tuple(servers))


def roll_back(
    model_name: str, bundle: Path, servers: Sequence[str], admin_key: str | None, settings: TrackingSettings,
    log: Callable[[str], None] = print,
) -> Rollout:  # fmt: skip
    """Move `champion` to the version before the current one, then roll it out."""
    tracking.configure(settings)
    history = tracking.champion_history(model_name)
    current = tracking.alias_version(model_name, CHAMPION)
    if current is None or len(history) < 2 or history[-1] != current:
        raise RolloutError(
            f"no previous champion of {model_name!r} to roll back to (history {history or 'empty'}, champion {current})"
        )
    target = history[-2]
    tracking.set_alias(model_name, CHAMPION, target)
    log(f"{CHAMPION}: version {current} -> {target}")
    try:
        done = roll_out(model_name, CHAMPION, bundle, servers, admin_key, settings, log)
    except BaseException:
        tracking.set_alias(model_name, CHAMPION, current)  # the registry says what is served
        log(f"{CHAMPION}: back to version {current}, which the servers still serve")
        raise
    tracking.forget_last_champion(model_name)
    return done


@flow(name="gigmatch-rollout", log_prints=True)
def rollout_flow(model_name: str, alias: str = CHAMPION) -> Rollout:
    """The champion (or `alias`) to the servers in GIGMATCH_SERVING_URLS, from GIGMATCH_ROLLOUT_BUNDLE_PATH."""
    settings = get_rollout_settings()
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    done = roll_out(
        model_name, alias, settings.rollout_bundle_path, settings.serving_urls, admin_key, get_tracking_settings(),
        get_run_logger().info,
    )  # fmt: skip
    print(f"rolled out version {done.version} (was {done.previous_version}) to {len(done.servers)} server(s)")
    return done


@flow(name="gigmatch-shadow-rollout", log_prints=True)
def shadow_rollout_flow(model_name: str) -> Rollout | None:
    """The challenger to the servers' shadow (GIGMATCH_ROLLOUT_CHALLENGER_PATH), if they have one."""
    settings = get_rollout_settings()
    if settings.rollout_challenger_path is None or not settings.serving_urls:
        return None
    admin_key = settings.admin_key.get_secret_value() if settings.admin_key else None
    try:
        done = roll_out(
            model_name, CHALLENGER, settings.rollout_challenger_path, settings.serving_urls, admin_key,
            get_tracking_settings(), get_run_logger().info, shadow=True,
        )  # fmt: skip
    except RolloutError as exc:  # the champion serves on, untouched: the shadow waits for the next challenger
        get_run_logger().error("the challenger did not reach the shadow: %s", exc)
        return None
    print(f"shadow: version {done.version} (was {done.previous_version}) on {len(done.servers)} server(s)")
    return done


def _keep_previous(bundle: Path) -> Path | None:
    """A copy of the bundle that serves now, beside it, to put back if the rollout fails."""
    if not (bundle / "lineage.json").exists():
        return None
    previous = bundle.with_name(f"{bundle.name}.previous")
    with staged_directory(previous) as staging:
        shutil.copytree(bundle, staging, dirs_exist_ok=True)
    return previous


def _version_in(bundle: Path) -> str | None:
    try:
        return str(json.loads((bundle / "lineage.json").read_text())["version"])
    except (OSError, ValueError, KeyError):
        return None


def _reload(server: str, admin_key: str, expected: str | None, shadow: bool = False) -> None:
    base = server.rstrip("/")
    answer = _call(f"{base}/v1/admin/reload", {"X-Admin-Key": admin_key}, method="POST")
    if shadow:
        shadowed = _CHALLENGER_INFO.search(_text(f"{base}/metrics"))
        version = shadowed.group(1) if shadowed else None
        if expected is not None and version != expected:
            raise RolloutError(f"{server} shadows version {version} after the reload, not {expected}")
        return
    api_key = get_rollout_settings().api_key
    client = {"X-API-Key": api_key.get_secret_value()} if api_key else {}
    serving = _call(f"{base}/v1/model", client).get("version")
    if expected is not None and str(serving) != expected:
        raise RolloutError(f"{server} reports version {serving} after the reload, not {expected} ({answer})")


_CHALLENGER_INFO = re.compile(r'^gigmatch_challenger_info\{[^}]*version="([^"]*)"[^}]*\} 1(?:\.0)?$', re.MULTILINE)


def _call(url: str, headers: dict[str, str], method: str = "GET") -> dict[str, object]:
    return json.loads(_text(url, headers, method) or "{}")


def _text(url: str, headers: dict[str, str] | None = None, method: str = "GET") -> str:
    request = urllib.request.Request(url, headers=headers or {}, method=method, data=b"" if method == "POST" else None)
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT) as response:
            return response.read().decode()
    except urllib.error.HTTPError as exc:
        detail = exc.read(500).decode(errors="replace")
        raise RolloutError(f"{url}: HTTP {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError) as exc:
        raise RolloutError(f"{url} cannot be reached (GIGMATCH_SERVING_URLS): {getattr(exc, 'reason', exc)}") from exc
