"""Check what cycnn's sdist and repaired wheel hold (run by .ci/run).

    python .ci/check_dist.py sdist dist/cycnn-X.tar.gz
    python .ci/check_dist.py wheel wheelhouse/cycnn-X-....whl --tag manylinux_2_34_x86_64

sdist: every tracked file a build or a test run needs (csrc/, src/, tests/, benchmarks/,
setup.py, pyproject.toml, MANIFEST.in, README.md, LICENSE) is there, and nothing generated.
wheel: every module of src/cycnn, one extension per .pyx, the platform tag asked for, the
vendored libgomp in cycnn.libs/ and the extensions linked to it (not to the system's).
"""
import argparse
import pathlib
import subprocess
import sys
import tarfile
import zipfile

REPO = pathlib.Path(__file__).resolve().parents[1]
SDIST_TREES = ("csrc", "src", "tests", "benchmarks")
SDIST_FILES = ("setup.py", "pyproject.toml", "MANIFEST.in", "README.md", "LICENSE")
GENERATED = (".so", ".o", ".pyc", ".pyd")


def tracked_files():
    """The repository's files under SDIST_TREES plus SDIST_FILES, as git knows them."""
    out = subprocess.run(["git", "-C", str(REPO), "ls-files", "--", *SDIST_TREES, *SDIST_FILES],
                         capture_output=True, text=True, check=True).stdout
    return set(out.split())


def fail(problems, what):
    if problems:
        print(f"{what}: FAILED", *problems, sep="\n  ", file=sys.stderr)
        sys.exit(1)
    print(f"{what}: ok")


def is_generated(name):
    return (name.endswith(GENERATED) or "__pycache__" in name
            or (name.startswith("src/cycnn/_kernels/") and name.endswith((".c", ".html"))))


def check_sdist(path):
    with tarfile.open(path) as tar:
        names = {m.name.split("/", 1)[1] for m in tar.getmembers() if m.isfile() and "/" in m.name}
    problems = [f"missing: {f}" for f in sorted(tracked_files() - names)]
    problems += [f"generated file shipped: {f}" for f in sorted(names) if is_generated(f)]
    fail(problems, f"sdist {pathlib.Path(path).name} ({len(names)} files)")


def needed_libraries(data):
    """DT_NEEDED entries of an ELF shared object given as bytes."""
    import io

    from elftools.elf.dynamic import DynamicSection  # pyelftools, installed with auditwheel
    from elftools.elf.elffile import ELFFile

    elf = ELFFile(io.BytesIO(data))
    return [tag.needed for section in elf.iter_sections() if isinstance(section, DynamicSection)
            for tag in section.iter_tags() if tag.entry.d_tag == "DT_NEEDED"]


def check_wheel(path, tag):
    problems = []
    if f"-{tag}." not in pathlib.Path(path).name and f".{tag}." not in pathlib.Path(path).name:
        problems.append(f"platform tag is not {tag}: {pathlib.Path(path).name}")
    with zipfile.ZipFile(path) as whl:
        names = set(whl.namelist())
        source = REPO / "src"
        modules = {str(p.relative_to(source)) for p in source.rglob("*.py")}
        problems += [f"missing: {m}" for m in sorted(modules - names)]
        vendored = sorted(n for n in names if n.startswith("cycnn.libs/libgomp"))
        if not vendored:
            problems.append(f"no libgomp in cycnn.libs/: {sorted(n for n in names if 'libs' in n)}")
        linked = []
        for pyx in sorted(source.glob("cycnn/_kernels/*.pyx")):
            prefix = f"cycnn/_kernels/{pyx.stem}."
            built = [n for n in names if n.startswith(prefix) and n.endswith(".so")]
            if len(built) != 1:
                problems.append(f"{pyx.name}: expected one extension, found {built}")
                continue
            needed = needed_libraries(whl.read(built[0]))
            gomp = [lib for lib in needed if lib.startswith("libgomp")]
            linked += gomp
            if gomp and not all(f"cycnn.libs/{lib}" in vendored for lib in gomp):
                problems.append(f"{built[0]} needs {gomp}, not the vendored {vendored}")
        if not linked:
            problems.append("no extension links libgomp: built without OpenMP?")
        problems += [f"generated/build file shipped: {n}" for n in sorted(names)
                     if n.endswith((".c", ".o")) or "__pycache__" in n]
    fail(problems, f"wheel {pathlib.Path(path).name} ({len(names)} files)")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("kind", choices=("sdist", "wheel"))
    parser.add_argument("path")
    parser.add_argument("--tag", help="wheel: the platform tag it must carry")
    args = parser.parse_args()
    if args.kind == "sdist":
        check_sdist(args.path)
    else:
        if not args.tag:
            parser.error("wheel needs --tag")
        check_wheel(args.path, args.tag)


if __name__ == "__main__":
    main()
