# CUTLASS headers come from the nvidia-cutlass Python package (cutlass_library/source).
execute_process(
  COMMAND "${Python_EXECUTABLE}" -c
    "import cutlass_library, os; print(os.path.join(os.path.dirname(cutlass_library.__file__), 'source'), end='')"
  OUTPUT_VARIABLE QBENCH_CUTLASS_SOURCE RESULT_VARIABLE _qbench_cutlass_rc)
if(NOT _qbench_cutlass_rc EQUAL 0 OR NOT EXISTS "${QBENCH_CUTLASS_SOURCE}/include/cutlass/cutlass.h")
  message(FATAL_ERROR "CUTLASS headers not found: install the nvidia-cutlass package (pip install nvidia-cutlass) into the Python that builds qbench_ext.")
endif()
set(CUTLASS_INCLUDE_DIRS "${QBENCH_CUTLASS_SOURCE}/include" "${QBENCH_CUTLASS_SOURCE}/tools/util/include")
file(STRINGS "${QBENCH_CUTLASS_SOURCE}/include/cutlass/version.h" _qbench_cutlass_ver REGEX "#define CUTLASS_(MAJOR|MINOR|PATCH) [0-9]+")
string(REGEX REPLACE ".*CUTLASS_MAJOR ([0-9]+).*" "\\1" _maj "${_qbench_cutlass_ver}")
string(REGEX REPLACE ".*CUTLASS_MINOR ([0-9]+).*" "\\1" _min "${_qbench_cutlass_ver}")
string(REGEX REPLACE ".*CUTLASS_PATCH ([0-9]+).*" "\\1" _pat "${_qbench_cutlass_ver}")
set(CUTLASS_VERSION "${_maj}.${_min}.${_pat}")
message(STATUS "qbench_ext: CUTLASS ${CUTLASS_VERSION} from ${QBENCH_CUTLASS_SOURCE}")
