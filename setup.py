"""Build of pycnn's C engine: one extension, pycnn._engine, from csrc/.

The engine is plain C11 (csrc/*.c); csrc/binding/*.c is the CPython layer.
GEMM micro-kernels for AVX2 and AVX-512 are compiled from the same source
with only their own flags and chosen at run time (never -march=native).
OpenMP is used when the compiler supports it, with a serial fallback.
"""
import os
import platform
import sys
import tempfile
from glob import glob

import numpy
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

X86 = platform.machine().lower() in ("x86_64", "amd64")
ISA_KERNELS = {
    "csrc/gemm_ukernel_avx2.c": ["-mavx2", "-mfma"],
    "csrc/gemm_ukernel_avx512.c": ["-mavx512f", "-mavx512vl", "-mfma"],
    "csrc/activation_avx2.c": ["-mavx2"],
}
COMMON_FLAGS = ["-std=c11", "-O3", "-Wall", "-Wextra", "-Wno-unused-parameter"]


def compiler_accepts(compiler, flag):
    """True when the compiler builds and links a tiny program with `flag`."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "probe.c")
        with open(src, "w") as f:
            f.write("#include <omp.h>\nint main(void) { return omp_get_num_procs() < 0; }\n")
        try:
            objs = compiler.compile([src], output_dir=tmp, extra_postargs=[flag])
            # LDFLAGS (e.g. sanitizer runtimes) must reach the probe's link too.
            compiler.link_executable(objs, os.path.join(tmp, "probe"),
                                     extra_postargs=[flag] + os.environ.get("LDFLAGS", "").split())
        except Exception:
            return False
    return True


class BuildEngine(build_ext):
    def build_extension(self, ext):
        if compiler_accepts(self.compiler, "-fopenmp"):
            ext.extra_compile_args += ["-fopenmp"]
            ext.extra_link_args += ["-fopenmp"]
        else:
            print("pycnn: compiler without OpenMP; the engine runs single-threaded", file=sys.stderr)
        if X86:
            # Each ISA file gets only its own flags; the rest stays portable.
            for source, flags in ISA_KERNELS.items():
                ext.extra_objects += self.compiler.compile(
                    [source], output_dir=self.build_temp, include_dirs=ext.include_dirs,
                    extra_postargs=COMMON_FLAGS + ["-ffp-contract=fast"] + flags)
            ext.define_macros.append(("PYCNN_HAVE_X86_KERNELS", "1"))
        super().build_extension(ext)


engine_sources = sorted(set(glob("csrc/*.c")) - set(ISA_KERNELS)) + sorted(glob("csrc/binding/*.c"))
define_macros = [("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")]
if os.environ.get("PYCNN_SANITIZER_CANARY"):
    define_macros.append(("PYCNN_SANITIZER_CANARY", "1"))

setup(
    ext_modules=[
        Extension(
            "pycnn._engine",
            sources=engine_sources,
            include_dirs=[numpy.get_include(), "csrc"],
            define_macros=define_macros,
            # Rebuild on header edits, and on edits of the ISA kernels (compiled in build_extension).
            depends=sorted(glob("csrc/*.h") + glob("csrc/binding/*.h")) + sorted(ISA_KERNELS),
            extra_compile_args=list(COMMON_FLAGS),
            extra_link_args=[],
        )
    ],
    cmdclass={"build_ext": BuildEngine},
)
