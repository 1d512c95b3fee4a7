"""Run deploy/k8s/create-secrets.sh against a stand-in ``kubectl``.

The stand-in understands the two commands the script uses (``get secret`` and ``create
secret generic --from-env-file``), keeps the Secrets as files, and logs every command
line it receives, so a test can check that no secret value ever appears on one.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CREATE_SECRETS = REPO / "deploy" / "k8s" / "create-secrets.sh"

KUBECTL = r"""#!/bin/sh
# stand-in kubectl for tests/deploy: Secrets live in $FAKE_KUBECTL_STORE/<ns>/<name>.env
set -eu
echo "$*" >>"$FAKE_KUBECTL_STORE/calls.log"
[ "$1" = "-n" ] || { echo "fake kubectl: expected -n NAMESPACE first" >&2; exit 2; }
ns=$2
shift 2
case "$1 $2" in
  "get secret")
    [ -f "$FAKE_KUBECTL_STORE/$ns/$3.env" ] ;;
  "create secret")
    [ "$3" = generic ] || { echo "fake kubectl: only generic secrets" >&2; exit 2; }
    name=$4
    case "$5" in
      --from-env-file=*) file=${5#--from-env-file=} ;;
      *) echo "fake kubectl: expected --from-env-file" >&2; exit 2 ;;
    esac
    mkdir -p "$FAKE_KUBECTL_STORE/$ns"
    cp "$file" "$FAKE_KUBECTL_STORE/$ns/$name.env"
    echo "secret/$name created" ;;
  *)
    echo "fake kubectl: unexpected command: $*" >&2; exit 2 ;;
esac
"""


@dataclass
class FakeCluster:
    root: Path

    @property
    def store(self) -> Path:
        return self.root / "store"

    def secrets(self, namespace: str) -> dict[str, dict[str, str]]:
        result: dict[str, dict[str, str]] = {}
        for path in sorted((self.store / namespace).glob("*.env")):
            pairs = (line.partition("=") for line in path.read_text().splitlines() if line)
            result[path.stem] = {key: value for key, _, value in pairs}
        return result

    @property
    def calls(self) -> list[str]:
        log = self.store / "calls.log"
        return log.read_text().splitlines() if log.exists() else []

    def create_secrets(self, namespace: str, **env: str) -> subprocess.CompletedProcess:
        bin_dir = self.root / "bin"
        bin_dir.mkdir(parents=True, exist_ok=True)
        kubectl = bin_dir / "kubectl"
        if not kubectl.exists():
            kubectl.write_text(KUBECTL)
            kubectl.chmod(0o755)
        self.store.mkdir(parents=True, exist_ok=True)
        return subprocess.run(
            ["sh", str(CREATE_SECRETS), namespace],
            env={
                "PATH": f"{bin_dir}:/usr/bin:/bin",
                "FAKE_KUBECTL_STORE": str(self.store),
                "HOME": str(self.root),
                "TMPDIR": os.environ.get("TMPDIR", "/tmp"),
                **env,
            },
            capture_output=True,
            text=True,
            timeout=60,
        )
