"""Shared machinery of the hostile-input suite (issue #15).

The console scripts are called *in process*, resolved by name from the package's `console_scripts`
entry points, so the suite does not care which module holds each `main`. Only a handful of probes that need a
real process (SIGINT, a closed pipe, kill -9, a second run beside a first) start one, through `tests/_child.py`,
which does what the installed console script does: `sys.exit(main())`.
"""

import atexit
import contextlib
import dataclasses
import io
import os
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from pathlib import Path

for _var, _value in dict(
    OMP_NUM_THREADS='1',
    MKL_NUM_THREADS='1',
    HF_HUB_OFFLINE='1',
    HF_DATASETS_OFFLINE='1',
    MPLBACKEND='Agg',
    TOKENIZERS_PARALLELISM='false',
).items():
    os.environ[_var] = _value  # before torch is imported; inherited by every child process

import importlib.metadata
import pytest

TESTS = Path(__file__).resolve().parent
SCRIPTS = (
    'gpt-nb-quickstart',
    'gpt-nb-train-tiny-stories',
    'gpt-nb-generate-text',
    'gpt-nb-analyze-attention',
    'gpt-nb-finetune',
    'gpt-nb-rl',
)
SESSION_TMP = Path(tempfile.mkdtemp(prefix='gpt_nb_hostile_'))
atexit.register(shutil.rmtree, SESSION_TMP, True)  # also when no probe ran (--collect-only, -k matching nothing)
# a token/tokenizer cache shared by the whole session (the probes of `--data .` set their own)
os.environ['GPT_NB_CACHE'] = str(SESSION_TMP / 'cache')
os.environ['HF_DATASETS_CACHE'] = str(SESSION_TMP / 'hf_datasets')


def entry_point(name: str):
    "The `main` of console script `name`, wherever the package keeps it."
    for ep in importlib.metadata.entry_points(group='console_scripts'):
        if ep.name == name:
            return ep.load()
    raise LookupError(f'console script {name!r} is not installed (pip install -e .)')


class ProbeTimeout(BaseException):
    "A probe ran past its time limit (a BaseException, so that no `except Exception` in the library swallows it)."


@dataclasses.dataclass
class Result:
    "What a command did: exit status (-1: killed by the probe's time limit), stdout, stderr."

    code: int
    out: str
    err: str
    seconds: float = 0.0

    @property
    def lines(self) -> list[str]:
        "The non-empty lines of stderr, progress-bar redraws (carriage returns) removed."
        return [l.rsplit('\r', 1)[-1].strip() for l in self.err.splitlines() if l.rsplit('\r', 1)[-1].strip()]

    @property
    def message(self) -> str:
        "The last line of stderr: where a one-line error message belongs."
        return self.lines[-1] if self.lines else ''

    def summary(self) -> str:
        "The exit status and the message, or for a traceback the exception it ends with."
        errors = [l for l in self.lines if 'error:' in l.lower()]
        tail = errors[-1] if errors else self.message
        if errors and errors[-1] != self.message:
            tail += f' (then: {self.message[:80]!r})'
        if 'Traceback' in self.err:
            tail = next(
                (
                    l
                    for l in reversed(self.err.splitlines())
                    if re.match(r'[\w.]+(Error|Exception|Interrupt|Exit|Timeout)\b', l)
                ),
                tail,
            )
            tail = 'Traceback ... ' + tail
        summary = f'exit {self.code}; stderr ends: {tail[:400]!r}'
        if (
            'PROBE TIMEOUT' in self.err and '(most recent call first)' in self.err
        ):  # a child that timed out: where it was
            frames = self.err.split('(most recent call first)', 1)[1].splitlines()[1:15]
            summary += '; its stack: ' + ' <- '.join(l.strip() for l in frames)
        return summary


def _cap_memory(extra_bytes: int):
    "Lower this process's address-space limit to what it uses now plus `extra_bytes`; returns the limit to restore."
    old = resource.getrlimit(resource.RLIMIT_AS)
    vm = int(next(l for l in open('/proc/self/status') if l.startswith('VmSize')).split()[1]) * 1024
    cap = vm + extra_bytes
    if old[1] != resource.RLIM_INFINITY:
        cap = min(cap, old[1])
    resource.setrlimit(resource.RLIMIT_AS, (cap, old[1]))
    return old


def run_cli(script: str, *argv, timeout: float = 60, memory: int = 6 << 30, stdout=None) -> Result:
    """Run console script `script` (e.g. 'gpt-nb-generate-text') in this process with `argv`, as the shell would:
    see `run_main`."""
    return run_main(entry_point(script), *argv, timeout=timeout, memory=memory, stdout=stdout)


def run_main(main, *argv, timeout: float = 60, memory: int | None = 6 << 30, stdout=None) -> Result:
    """Call `main(argv)` in this process, as the shell would run its command: the exit status (return value,
    `SystemExit`, or 1 / 130 with a traceback on stderr for an uncaught exception), stdout and stderr. It runs under
    a time limit and (unless `memory` is None) an address-space cap, so that a probe that allocates terabytes fails
    instead of taking the machine down. `stdout`: a file object to use as stdout instead."""
    # stdout and stderr as Python makes them for a pipe: UTF-8, strict on stdout, backslashreplace on stderr
    out_bytes, err_bytes = io.BytesIO(), io.BytesIO()
    out = io.TextIOWrapper(out_bytes, encoding='utf-8', errors='strict', write_through=True)
    err = io.TextIOWrapper(err_bytes, encoding='utf-8', errors='backslashreplace', write_through=True)
    argv = [str(a) for a in argv]

    def on_alarm(signum, frame):
        raise ProbeTimeout(f'still running after {timeout:g} s')

    previous = signal.signal(signal.SIGALRM, on_alarm)
    old_limit = _cap_memory(memory) if memory is not None else None
    t0 = time.perf_counter()
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(stdout or out), contextlib.redirect_stderr(err):
            try:
                code = main(argv)
                code = 0 if code is None else code
            except SystemExit as exit:
                code = 0 if exit.code is None else exit.code if isinstance(exit.code, int) else 1
                if not isinstance(exit.code, (int, type(None))):
                    print(exit.code, file=sys.stderr)
            except ProbeTimeout as timed_out:
                code = -1
                print(f'PROBE TIMEOUT: {timed_out}', file=sys.stderr)
            except KeyboardInterrupt:
                code = 130
                traceback.print_exc()
            except BaseException:  # what Python does with an uncaught exception
                code = 1
                traceback.print_exc()
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        if old_limit is not None:
            resource.setrlimit(resource.RLIMIT_AS, old_limit)
    return Result(
        code,
        out_bytes.getvalue().decode('utf-8', 'replace'),
        err_bytes.getvalue().decode('utf-8', 'replace'),
        time.perf_counter() - t0,
    )


# ------------------------------------------------------------------------------------------- child processes
def child_command(script: str, *argv, prelude: str | None = None) -> list[str]:
    "The command line of a child process that runs console script `script` as the installed script would."
    return [
        sys.executable,
        str(TESTS / '_child.py'),
        *(['--prelude', prelude] if prelude else []),
        script,
        *map(str, argv),
    ]


class Child:
    "A child process whose stdout and stderr are collected by threads, so that a probe can wait for its output."

    def __init__(self, cmd, cwd, shell: bool = False, env: dict | None = None):
        self.t0 = time.perf_counter()
        self.proc = subprocess.Popen(
            cmd,
            cwd=cwd,
            shell=shell,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env={**os.environ, 'PYTHONUNBUFFERED': '1', **(env or {})},
        )
        self.out, self.err = bytearray(), bytearray()
        self.threads = [
            threading.Thread(target=self._pump, args=(s, b), daemon=True)
            for s, b in ((self.proc.stdout, self.out), (self.proc.stderr, self.err))
        ]
        for t in self.threads:
            t.start()
        self.peak_rss = 0

    @staticmethod
    def _pump(stream, buffer):
        while chunk := stream.read1(65536):
            buffer.extend(chunk)

    def rss(self) -> int:
        "Resident memory of the child in bytes (0 once it has exited)."
        try:
            kb = int(next(l for l in open(f'/proc/{self.proc.pid}/status') if l.startswith('VmRSS')).split()[1])
        except (OSError, StopIteration):
            return 0
        self.peak_rss = max(self.peak_rss, kb * 1024)
        return kb * 1024

    def wait_for(self, predicate, timeout: float) -> bool:
        "Wait until `predicate(stdout text)` holds (True) or `timeout` seconds pass or the child exits (False)."
        end = time.perf_counter() + timeout
        while time.perf_counter() < end:
            self.rss()
            if predicate(self.out.decode('utf-8', 'replace')):
                return True
            if self.proc.poll() is not None:
                return predicate(self.out.decode('utf-8', 'replace'))
            time.sleep(0.05)
        return False

    def signal(self, sig=signal.SIGINT):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)

    def finish(self, timeout: float = 30) -> Result:
        "Wait for the child (killing it after `timeout` s: exit -1) and return what it did."
        try:
            code = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGUSR1)  # tests/_child.py answers with every thread's stack on stderr
            time.sleep(2)
            self.proc.kill()
            self.proc.wait()
            code = -1
            self.err.extend(f'\nPROBE TIMEOUT: still running after {timeout:g} s'.encode())
        for t in self.threads:
            t.join(5)
        code = 128 - code if code < -1 else code  # killed by signal N: what the shell shows, 128 + N
        return Result(
            code,
            self.out.decode('utf-8', 'replace'),
            self.err.decode('utf-8', 'replace'),
            time.perf_counter() - self.t0,
        )

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()


@pytest.fixture
def children():
    "Start child processes with `children(cmd, cwd)`; any still running at the end of the test are killed."
    started = []

    def start(cmd, cwd, **kw):
        started.append(Child(cmd, cwd, **kw))
        return started[-1]

    yield start
    for c in started:
        c.kill()


# ------------------------------------------------------------------------------------------- shared artefacts
@pytest.fixture(autouse=True)
def _in_tmp_dir(tmp_path, monkeypatch):
    "Every probe runs in its own empty working directory, so that default paths (checkpoints/, attention/) land there."
    monkeypatch.chdir(tmp_path)


@pytest.fixture(scope='session')
def session_tmp():
    return SESSION_TMP


def pytest_addoption(parser):
    "Accept `-n N` (pytest-xdist's option) when xdist is not installed, so that `pytest tests -n0` runs either way."
    try:
        import xdist  # noqa: F401
    except ImportError:
        parser.getgroup('hostile')._addoption(
            '-n',
            '--numprocesses',
            dest='numprocesses',
            default=None,
            help='ignored: pytest-xdist is not installed (the suite runs in one process)',
        )
