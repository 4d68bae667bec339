"""BFCL (Berkeley Function Calling Leaderboard) rules written for assay: decoding, the AST checker, the prompt, the
multi-turn executor and checker, the v4 data and the leaderboard's aggregation. See docs/suites-tools.md."""
