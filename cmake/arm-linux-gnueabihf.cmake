# Cross-compile for 32-bit ARMv7 hard-float (Debian's g++-arm-linux-gnueabihf)
# and run the results under qemu-user.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR armv7l)
set(CMAKE_C_COMPILER arm-linux-gnueabihf-gcc)
set(CMAKE_CXX_COMPILER arm-linux-gnueabihf-g++)
# Debian armhf's baseline (VFPv3-D16, no NEON) for everything, so the scalar path runs on any ARMv7 board; the
# NEON kernel files add -mfpu=neon-vfpv4 themselves (CMakeLists.txt) and are chosen at run time only when
# HWCAP reports NEON and VFPv4 (vfmaq_f32, fused multiply-add).
set(CMAKE_C_FLAGS_INIT "-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard")
set(CMAKE_CXX_FLAGS_INIT "-march=armv7-a -mfpu=vfpv3-d16 -mfloat-abi=hard")
set(CMAKE_FIND_ROOT_PATH /usr/arm-linux-gnueabihf)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)   # Python/pybind11 headers are on the build host
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)   # pybind11Config.cmake is in the host venv (ONLY would miss it)
# the emulated core is chosen at run time with QEMU_CPU (cortex-a15, cortex-a7, max, ...)
set(CMAKE_CROSSCOMPILING_EMULATOR qemu-arm;-L;/usr/arm-linux-gnueabihf)
