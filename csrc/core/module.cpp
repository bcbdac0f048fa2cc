// The Python module: importing qbench_ext._C loads this library, whose static initialisers
// run the TORCH_LIBRARY registrations. Built on the stable ABI (abi3). build_info is a plain
// Python function rather than a torch op so that it needs nothing from torch's ABI.
#include <Python.h>

#include "core/build_info.h"

namespace {

PyObject* build_info(PyObject*, PyObject*) { return PyUnicode_FromString(qbench::kBuildInfoJson); }

PyMethodDef methods[] = {
    {"build_info", build_info, METH_NOARGS, "JSON describing how this library was built."},
    {nullptr, nullptr, 0, nullptr},
};

}  // namespace

PyMODINIT_FUNC PyInit__C() {
  static PyModuleDef module = {PyModuleDef_HEAD_INIT, "_C", nullptr, 0, methods};
  return PyModule_Create(&module);
}
