// The Python module shell: importing qbench_ext._C loads this library, whose static
// initialisers run the TORCH_LIBRARY registrations. Built on the stable ABI (abi3).
#include <Python.h>

PyMODINIT_FUNC PyInit__C() {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, 0, nullptr};
  return PyModule_Create(&module);
}
