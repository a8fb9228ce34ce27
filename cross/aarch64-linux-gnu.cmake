# CMake toolchain for arm64 (aarch64-linux-gnu) on a Debian amd64 host with multiarch:
# the compilers come from crossbuild-essential-arm64, the libraries are Debian's ":arm64"
# packages in /usr/lib/aarch64-linux-gnu, headers are shared in /usr/include. The host's
# protoc generates the code (same Debian version as the arm64 libprotobuf).
#
#   cmake -S . -B build/arm64 -DCMAKE_TOOLCHAIN_FILE=cross/aarch64-linux-gnu.cmake
#
# Tests run under qemu-user (CMAKE_CROSSCOMPILING_EMULATOR), also for catch_discover_tests.
# libyaml-cpp-dev is not Multi-Arch: same (its arm64 package would replace the amd64 one), so
# scripts/build-arm64.sh extracts it into a folder of its own and passes -Dyaml-cpp_DIR=.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(CMAKE_LIBRARY_ARCHITECTURE aarch64-linux-gnu)

set(CMAKE_C_COMPILER aarch64-linux-gnu-gcc)
set(CMAKE_CXX_COMPILER aarch64-linux-gnu-g++)

find_program(SOVDEV_QEMU_AARCH64 NAMES qemu-aarch64-static qemu-aarch64)
if(SOVDEV_QEMU_AARCH64)
  set(CMAKE_CROSSCOMPILING_EMULATOR ${SOVDEV_QEMU_AARCH64})
endif()

# Debian multiarch: no separate sysroot. Libraries and package configs are looked up in the
# arm64 triplet folders (CMAKE_LIBRARY_ARCHITECTURE), programs (protoc) on the host.
set(CMAKE_FIND_ROOT_PATH /usr/aarch64-linux-gnu /usr)
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
# Never pick an amd64 library by accident.
set(CMAKE_IGNORE_PATH /usr/lib/x86_64-linux-gnu /lib/x86_64-linux-gnu)

# pkg-config for the target: only arm64 and architecture-independent .pc files.
set(ENV{PKG_CONFIG_LIBDIR} "/usr/lib/aarch64-linux-gnu/pkgconfig:/usr/share/pkgconfig")
set(ENV{PKG_CONFIG_PATH} "")
