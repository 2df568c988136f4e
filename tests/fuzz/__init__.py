"""Fuzzing of every decoder that reads untrusted bytes, on a fixed, reproducible budget.

Each test feeds a decoder random bytes and mutations of valid inputs; the decoder must
return a value or raise its own documented error. Anything else is a crash.
"""
