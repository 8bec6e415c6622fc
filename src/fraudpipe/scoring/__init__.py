"""The scoring service: consume transactions, score them with the serving model, write and
publish predictions exactly once per transaction and model version, dead-letter poison messages.
"""
