# Finds the Torch that the build's Python imports, and makes its CMake config work on a
# machine whose CUDA toolkit lacks some libraries Torch's config asks for (nvrtc, cuBLAS,
# ...): those come with torch's pip dependencies (nvidia/cu13/lib), which we add to the
# search path. Only torch, c10 and the CUDA runtime are linked: never libcuda (the driver),
# so the extension loads on machines without a GPU driver.
execute_process(
  COMMAND "${Python_EXECUTABLE}" -c "import torch, os; print(torch.utils.cmake_prefix_path, end='')"
  OUTPUT_VARIABLE QBENCH_TORCH_PREFIX COMMAND_ERROR_IS_FATAL ANY)
execute_process(
  COMMAND "${Python_EXECUTABLE}" -c
    "import importlib.util, os; s = importlib.util.find_spec('nvidia'); print(';'.join(os.path.join(p, d, 'lib') for p in (s.submodule_search_locations if s else []) for d in os.listdir(p) if os.path.isdir(os.path.join(p, d, 'lib'))), end='')"
  OUTPUT_VARIABLE QBENCH_PIP_CUDA_LIBDIRS)
list(APPEND CMAKE_PREFIX_PATH "${QBENCH_TORCH_PREFIX}")
list(APPEND CMAKE_LIBRARY_PATH ${QBENCH_PIP_CUDA_LIBDIRS})
# pip's CUDA wheels ship versioned sonames only (libnvrtc.so.13): let find_library take them.
list(APPEND CMAKE_FIND_LIBRARY_SUFFIXES ".so.13" ".so.12" ".so.11" ".so.10" ".so.1" ".so.0")

# Torch's config otherwise compiles for every arch it knows when it sees no GPU.
string(REPLACE ";" " " _qbench_torch_archs "${QBENCH_CUDA_ARCHS}")
string(REGEX REPLACE "([0-9])([0-9a-z]+)" "\\1.\\2" _qbench_torch_archs "${_qbench_torch_archs}")
set(ENV{TORCH_CUDA_ARCH_LIST} "${_qbench_torch_archs}")
find_package(Torch REQUIRED)

set(QBENCH_TORCH_LIBRARIES torch c10 CUDA::cudart)
if(TARGET c10_cuda)
  list(APPEND QBENCH_TORCH_LIBRARIES c10_cuda)
endif()
if(TARGET torch_cuda)
  list(APPEND QBENCH_TORCH_LIBRARIES torch_cuda)
endif()

# ATen's CUDA headers include cuSPARSE/cuBLAS/cuSOLVER headers that a bare toolkit may lack.
# Expose only the headers the toolkit is missing, taken from torch's pip CUDA packages, so
# the toolkit's own headers always win.
set(QBENCH_EXTRA_CUDA_INCLUDE "${CMAKE_BINARY_DIR}/pip_cuda_headers")
file(MAKE_DIRECTORY "${QBENCH_EXTRA_CUDA_INCLUDE}")
foreach(_libdir IN LISTS QBENCH_PIP_CUDA_LIBDIRS)
  get_filename_component(_incdir "${_libdir}/../include" ABSOLUTE)
  file(GLOB _headers RELATIVE "${_incdir}" "${_incdir}/*.h")
  foreach(_h IN LISTS _headers)
    if(NOT EXISTS "${CUDAToolkit_INCLUDE_DIRS}/${_h}" AND NOT EXISTS "${QBENCH_EXTRA_CUDA_INCLUDE}/${_h}")
      file(CREATE_LINK "${_incdir}/${_h}" "${QBENCH_EXTRA_CUDA_INCLUDE}/${_h}" SYMBOLIC)
    endif()
  endforeach()
endforeach()
