/* What the guard gate (_gate.c) offers the compiled resolve (_fastpath.c). */
#ifndef WAYPOST_GATE_H
#define WAYPOST_GATE_H

#define PY_SSIZE_T_CLEAN
#include <Python.h>

extern PyTypeObject GateType;

/* 1: every guard the guard rules matching the decoded ASCII path `s` require remembers the
 * request's credential; `*identity` is then the identity headers (a new tuple). 2: no guard
 * rule matches the path (`*identity` NULL). 0: not handled (the Python guard layer decides);
 * -1: an error. */
int gate_pass(PyObject *gate, PyObject *request, const char *s, Py_ssize_t n,
              PyObject **identity);

/* 0: no guard rule matches the decoded ASCII path `s`; 1: one may (or the Gate cannot tell);
 * -1: an error. */
int gate_matches(PyObject *gate, const char *s, Py_ssize_t n);

/* The Vary of a decision the guards let through (borrowed). */
PyObject *gate_vary(PyObject *gate);

/* Adds the Gate type to the module. */
int gate_add_type(PyObject *module);

#endif
