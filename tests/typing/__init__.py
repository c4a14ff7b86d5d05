"""mypy against typed tasks: a correct example passes strict, a wrong one fails."""
