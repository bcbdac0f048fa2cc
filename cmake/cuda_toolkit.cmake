# Picks the CUDA toolkit before the CUDA language is enabled: CUDA_HOME / CUDA_PATH, else
# /usr/local/cuda, else the nvcc on PATH. Torch's CMake config derives the toolkit's include
# dirs from nvcc's location, so a wrapper script on PATH (as on some machines) would send it
# to the wrong prefix: we hand CMake the real compiler inside the toolkit.
if(NOT CMAKE_CUDA_COMPILER AND NOT DEFINED ENV{CUDACXX})
  set(_qbench_cuda_roots "$ENV{CUDA_HOME}" "$ENV{CUDA_PATH}" "/usr/local/cuda")
  foreach(_root IN LISTS _qbench_cuda_roots)
    if(_root AND EXISTS "${_root}/bin/nvcc" AND EXISTS "${_root}/include/cuda_runtime.h")
      set(CMAKE_CUDA_COMPILER "${_root}/bin/nvcc")
      break()
    endif()
  endforeach()
endif()
if(CMAKE_CUDA_COMPILER)
  get_filename_component(_qbench_nvcc_dir "${CMAKE_CUDA_COMPILER}" DIRECTORY)
  get_filename_component(CUDA_TOOLKIT_ROOT_DIR "${_qbench_nvcc_dir}" DIRECTORY)
  set(CUDAToolkit_ROOT "${CUDA_TOOLKIT_ROOT_DIR}")
endif()
