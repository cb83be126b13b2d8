"""Where the suite finds the repository's files, and the independent reference code it reuses."""
from __future__ import annotations

import importlib.util
import os
import shutil
from pathlib import Path
from types import ModuleType

REPO = Path(__file__).resolve().parents[3]
PYTHON_REFERENCE = REPO / "sae" / "src" / "test" / "resources" / "python"


def jar() -> Path:
    """The sidecar's fat jar: $SAEGUARD_JAR, else sidecar/target/saeguard.jar."""
    return Path(os.environ.get("SAEGUARD_JAR", REPO / "sidecar" / "target" / "saeguard.jar"))


def server_jar() -> Path:
    """The production fat jar (the default image's, without the demo's assets): $SAEGUARD_SERVER_JAR, else
    saeguard-server.jar beside :func:`jar`."""
    return Path(os.environ.get("SAEGUARD_SERVER_JAR", jar().parent / "saeguard-server.jar"))


def make_sae() -> Path:
    """make_sae.py, the random-SAE generator the Java ITs use: $SAEGUARD_MAKE_SAE, else its source path."""
    return Path(os.environ.get("SAEGUARD_MAKE_SAE", PYTHON_REFERENCE / "make_sae.py"))


def java() -> str:
    """$SAEGUARD_JAVA, else $JAVA_HOME/bin/java, else java on the PATH."""
    if os.environ.get("SAEGUARD_JAVA"):
        return os.environ["SAEGUARD_JAVA"]
    if os.environ.get("JAVA_HOME"):
        return str(Path(os.environ["JAVA_HOME"]) / "bin" / "java")
    return shutil.which("java") or "java"


def load_reference(name: str) -> ModuleType:
    """A module of sae/src/test/resources/python (e.g. safetensors_io), under a name of its own
    so it never shadows saeguard_attach's modules."""
    spec = importlib.util.spec_from_file_location("reference_" + name, PYTHON_REFERENCE / (name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
