"""The book's ``lincoln.utils``: `mnist` (the data, from the verified official files) and
`np_utils` (its small NumPy helpers)."""
