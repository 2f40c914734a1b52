"""Build the Cython extensions and the C kernels they call.

- OpenMP is probed by compiling and linking a tiny OpenMP program; when that fails (or when
  CYCNN_NO_OPENMP=1) the kernels are built serially and a loud warning says so.
- No -march=native: files named *_avx2.c / *_avx512.c are compiled with their own ISA flags and
  chosen at run time from the CPU's features; everything else is baseline x86-64.
- Each csrc/ file is compiled once and its object linked into every extension that lists it.
"""
import os
import shutil
import sys
import sysconfig
import tempfile
import textwrap
from concurrent.futures import ThreadPoolExecutor
from glob import glob

import numpy as np
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext
from setuptools.modified import newer_group

HERE = os.path.dirname(os.path.abspath(__file__))
ISA_FLAGS = {
    "_avx512.c": ["-mavx512f", "-mavx512dq", "-mavx512vl", "-mavx2", "-mfma"],
    "_avx2.c": ["-mavx2", "-mfma"],
}
BASE_FLAGS = ["-O3", "-std=gnu11", "-fno-math-errno", "-fno-strict-aliasing", "-Wno-unused-function"]
if sys.platform == "win32":  # pragma: no cover - Linux is the target
    BASE_FLAGS, ISA_FLAGS = ["/O2"], {"_avx512.c": ["/arch:AVX512"], "_avx2.c": ["/arch:AVX2"]}
OPENMP_FLAGS = ["/openmp"] if sys.platform == "win32" else ["-fopenmp"]

# CYCNN_SANITIZE=1: an AddressSanitizer + UndefinedBehaviorSanitizer build (any UB aborts), for
# tools/sanitize.sh only, never for wheels; python then needs libasan preloaded (README,
# "Sanitizer build").
SANITIZE_FLAGS = []
if os.environ.get("CYCNN_SANITIZE", "") not in ("", "0"):
    SANITIZE_FLAGS = ["-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                      "-fno-omit-frame-pointer", "-g", "-O1"]
    BASE_FLAGS = BASE_FLAGS + SANITIZE_FLAGS

OPENMP_TEST = textwrap.dedent("""
    #include <omp.h>
    #include <stdio.h>
    int main(void) {
        int n = 0;
        #pragma omp parallel reduction(+:n)
        n += 1;
        printf("%d %d\\n", n, omp_get_max_threads());
        return n < 1;
    }
""")


def _warn(message):
    bar = "!" * 78
    print(f"\n{bar}\n{message}\n{bar}\n", file=sys.stderr)


def isa_of(path):
    for suffix, flags in ISA_FLAGS.items():
        if path.endswith(suffix):
            return flags
    return None


class BuildExt(build_ext):
    """build_ext that probes OpenMP, compiles the C kernels once for all extensions (ISA-specific
    files with their own flags), then builds the extensions.

    Kernels and extensions are compiled in parallel on the usable CPUs unless `-j N` says
    otherwise (pip and `python -m build` give no -j).
    """

    def finalize_options(self):
        if self.parallel is None:
            self.parallel = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") \
                else (os.cpu_count() or 1)
        super().finalize_options()

    def _probe_openmp(self):
        if os.environ.get("CYCNN_NO_OPENMP", "") not in ("", "0"):
            _warn("CYCNN_NO_OPENMP is set: building cycnn WITHOUT OpenMP (kernels run on 1 thread).")
            return False
        tmp = tempfile.mkdtemp(prefix="cycnn-omp-")
        try:
            src = os.path.join(tmp, "omp_probe.c")
            with open(src, "w") as f:
                f.write(OPENMP_TEST)
            objs = self.compiler.compile([src], output_dir=tmp, extra_postargs=OPENMP_FLAGS)
            self.compiler.link_executable(objs, "omp_probe", output_dir=tmp,
                                          extra_postargs=OPENMP_FLAGS)
            return True
        except Exception as exc:  # CompileError, LinkError
            _warn("OpenMP probe failed: building cycnn WITHOUT OpenMP (kernels run on 1 thread).\n"
                  f"Reason: {exc}\nInstall a compiler with OpenMP support (gcc, or clang + libomp).")
            return False
        finally:
            shutil.rmtree(tmp, ignore_errors=True)

    def build_extensions(self):
        openmp = self._probe_openmp()
        compiler = os.path.basename(str(self.compiler.compiler_so[0])) if hasattr(
            self.compiler, "compiler_so") else sysconfig.get_config_var("CC")
        print(f"cycnn: OpenMP {'enabled' if openmp else 'DISABLED'}; compiler {compiler}")
        # Objects left in build/ by a build with the other OpenMP setting must not be reused.
        stamp = os.path.join(self.build_temp, "cycnn-openmp-stamp")
        if not os.path.exists(stamp) or open(stamp).read() != str(openmp):
            self.force = True
        os.makedirs(self.build_temp, exist_ok=True)
        with open(stamp, "w") as f:
            f.write(str(openmp))
        for ext in self.extensions:
            if openmp:
                ext.extra_compile_args += OPENMP_FLAGS
                ext.extra_link_args += OPENMP_FLAGS
            ext.define_macros.append(("CYCNN_OPENMP_BUILD", "1" if openmp else "0"))
        self._compile_kernels()
        super().build_extensions()

    def _compile_kernels(self):
        """Compile each csrc/ file once, in parallel, and link its object into every extension
        that lists it (several extensions share the GEMM, conv and pool kernels; compiled per
        extension they would cost twice and, built in parallel, race on the same object file).
        *_avx2.c / *_avx512.c files get their ISA flags. An object newer than its source and
        every header is reused unless --force."""
        settings = {(tuple(e.include_dirs), tuple(e.define_macros), tuple(e.extra_compile_args))
                    for e in self.extensions}
        assert len(settings) == 1, "the extensions must share include dirs, macros and flags"
        (include_dirs, macros, flags), = settings
        headers = self.extensions[0].depends
        kernels = sorted({s for e in self.extensions for s in e.sources if s.startswith("csrc")})

        def compile_one(src):
            obj, = self.compiler.object_filenames([src], output_dir=self.build_temp)
            if self.force or newer_group([src] + headers, obj):
                own_flags = BASE_FLAGS + isa_of(src) if isa_of(src) else list(flags)
                self.compiler.compile([src], output_dir=self.build_temp, macros=list(macros),
                                      include_dirs=list(include_dirs), extra_postargs=own_flags)
            return obj

        workers = os.cpu_count() if self.parallel is True else int(self.parallel or 1)
        with ThreadPoolExecutor(max_workers=max(1, workers)) as pool:
            objects = dict(zip(kernels, pool.map(compile_one, kernels)))
        for ext in self.extensions:
            mine = [s for s in ext.sources if s in objects]
            ext.extra_objects = list(ext.extra_objects or []) + [objects[s] for s in mine]
            ext.depends = ext.depends + mine  # an edited kernel relinks the extension
            ext.sources = [s for s in ext.sources if s not in objects]


def c_sources(*patterns):
    files = []
    for pattern in patterns:
        files += sorted(glob(os.path.join("csrc", pattern)))
    return files


def extension(name, pyx, csrc):
    return Extension(
        f"cycnn._kernels.{name}",
        sources=[f"src/cycnn/_kernels/{pyx}"] + csrc,
        include_dirs=["csrc", np.get_include()],
        depends=sorted(glob("csrc/**/*.h", recursive=True)),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=list(BASE_FLAGS),
        extra_link_args=list(SANITIZE_FLAGS),
    )


extensions = [
    extension("conv", "conv.pyx", [f for f in c_sources("cpu.c", "gemm/*.c", "conv/*.c")
                                   if "depthwise" not in f]),
    extension("depthwise", "depthwise.pyx", c_sources("cpu.c", "conv/depthwise*.c")),
    extension("pool", "pool.pyx", c_sources("pool/*.c")),
    extension("infer", "infer.pyx", c_sources("cpu.c", "gemm/*.c", "conv/*.c", "pool/*.c")),
    extension("optim", "optim.pyx", c_sources("cpu.c", "optim/*.c")),
    extension("eltwise", "eltwise.pyx", []),
    extension("_openmp", "_openmp.pyx", []),
]

setup(
    ext_modules=cythonize(
        extensions,
        compiler_directives={
            "language_level": 3, "boundscheck": False, "wraparound": False,
            "cdivision": True, "initializedcheck": False,
        },
    ),
    cmdclass={"build_ext": BuildExt},
)
