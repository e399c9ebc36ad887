"""Running one of the JSON scenarios (tests/svm/*_scenario.py) for a test:
inside the SVM test host when pytest runs outside it, directly when it
already runs inside (SVM_HOST=1), and the facts the scenario printed as
JSON on its last line back."""
import json
import os
import subprocess

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
INSIDE = os.environ.get("SVM_HOST") == "1"


def run_scenario(script, build, args, timeout=400):
    """script with --khyve BUILD/src/cmd/khyve and args; the facts (a dict).
    timeout: the test host's; the whole run gets 100 s more."""
    cmd = ["/usr/bin/python3", os.path.join(REPO, "tests", "svm", script),
           "--khyve", os.path.join(REPO, build, "src", "cmd", "khyve"), *args]
    if not INSIDE:
        cmd = [os.path.join(REPO, "scripts", "svm-host"), "--timeout", str(timeout), "--share",
               os.path.join(REPO, build), "--", *cmd]
    p = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, text=True,
                       errors="replace", timeout=timeout + 100, cwd=REPO)
    assert p.returncode == 0 and p.stdout.strip(), f"exit {p.returncode}\n{p.stdout}\n{p.stderr}"
    return json.loads(p.stdout.strip().splitlines()[-1])
