"""The README's quickstart, run as a newcomer would: in a fresh project outside this repository, on the built wheel.

`python -m tests.readme_quickstart` (run by .ci/run):

1. builds the wheel (and checks that it ships the LICENSE);
2. `readme`: writes the files of the README's quickstart section (each ```python block whose first line is a
   `# path` comment) into an empty folder, installs the wheel in a fresh venv there, and runs `pytest evals/`;
3. `init`: in another empty folder and venv, runs `evaltrace init`, then `pytest evals/`.

Both must pass offline. The blocks are read from README.md itself, so the README and this check cannot drift;
`extract_quickstart` is also used by tests/core/test_quickstart.py, which runs the same files in-process.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SECTION = '## Five-minute quickstart'
_BLOCK = re.compile(r'^```python\n# (?P<path>[\w./-]+\.py)\n(?P<body>.*?)^```$', re.DOTALL | re.MULTILINE)


def extract_quickstart(readme: str) -> dict[str, str]:
    """The files of the README's quickstart section: path -> content (the `# path` line is dropped)."""
    start = readme.index(SECTION)
    end = readme.find('\n## ', start + len(SECTION))
    section = readme[start : end if end != -1 else len(readme)]
    files = {m['path']: m['body'] for m in _BLOCK.finditer(section)}
    if not files:
        raise ValueError(f'README.md: no ```python block starting with a `# path` comment under {SECTION!r}')
    return files


def _uv() -> list[str]:
    found = shutil.which('uv')
    return [found] if found else [sys.executable, '-m', 'uv']


def _run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None) -> None:
    print('+', ' '.join(cmd), f'(in {cwd})', flush=True)
    subprocess.run(cmd, cwd=cwd, env=env, check=True)


def build_wheel(out: Path) -> Path:
    _run([*_uv(), 'build', '--wheel', '--quiet', '-o', str(out)], ROOT)
    wheel = next(out.glob('evaltrace-*.whl'))
    with zipfile.ZipFile(wheel) as z:
        if not any(name.endswith('.dist-info/licenses/LICENSE') for name in z.namelist()):
            raise SystemExit(f'{wheel.name} ships no LICENSE')
    return wheel


def _fresh_project(wheel: Path, where: Path, name: str) -> tuple[Path, dict[str, str]]:
    project = where / name
    project.mkdir()
    venv = project / '.venv'
    _run([*_uv(), 'venv', '--quiet', '--python', sys.executable, str(venv)], project)
    env = {k: v for k, v in os.environ.items() if not k.startswith(('VIRTUAL_ENV', 'PYTHONPATH', 'EVALTRACE_'))}
    env.update(VIRTUAL_ENV=str(venv), PATH=f'{venv / "bin"}{os.pathsep}{env.get("PATH", "")}')
    _run([*_uv(), 'pip', 'install', '--quiet', str(wheel)], project, env)
    return project, env


def run_readme(wheel: Path, where: Path) -> None:
    project, env = _fresh_project(wheel, where, 'readme-project')
    for path, body in extract_quickstart((ROOT / 'README.md').read_text(encoding='utf-8')).items():
        (project / path).parent.mkdir(parents=True, exist_ok=True)
        (project / path).write_text(body, encoding='utf-8')
    _run(['pytest', 'evals/', '-p', 'no:cacheprovider'], project, env)


def run_init(wheel: Path, where: Path) -> None:
    project, env = _fresh_project(wheel, where, 'init-project')
    _run(['evaltrace', 'init'], project, env)
    _run(['pytest', 'evals/', '-p', 'no:cacheprovider'], project, env)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('which', nargs='*', help='readme and/or init (default: both)')
    args = parser.parse_args(argv)
    if unknown := set(args.which) - {'readme', 'init'}:
        parser.error(f'unknown check(s): {", ".join(sorted(unknown))}')
    # Outside the repository, so that nothing of it (conftest.py, pyproject.toml, agents/) can help.
    with tempfile.TemporaryDirectory(prefix='evaltrace-newcomer-') as tmp:
        where = Path(tmp)
        wheel = build_wheel(where / 'dist')
        for which in args.which or ['readme', 'init']:
            {'readme': run_readme, 'init': run_init}[which](wheel, where)
    print('quickstart: the README example and `evaltrace init` pass in fresh projects', flush=True)
    return 0


if __name__ == '__main__':
    sys.exit(main())
