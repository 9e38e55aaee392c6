"""``ISlurm`` over slurmrestd: versions, job bodies, answers, tokens, the HTTP client."""
