//! Black-box tests of Custody; the tests themselves live in `tests/tests/`.
