# Cross-compile for 64-bit ARM (Debian's g++-aarch64-linux-gnu) and run the
# results under qemu-user. See /work/shared/reference/arm_testing.md.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)   # Python/pybind11 headers are on the build host
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)   # pybind11Config.cmake is in the host venv (ONLY would miss it)
# the emulated core is chosen at run time with the QEMU_CPU env var (cortex-a72, cortex-a76, ...)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-aarch64;-L;/usr/aarch64-linux-gnu)
