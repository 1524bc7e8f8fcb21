"""Who may do what: pure policy functions, one module per resource, over plain facts.

Routes and services never compare names or groups themselves; they load the facts
(`facts.py`) and ask the policy. The truth tables in tests/unit/test_policies.py pin
every rule down.
"""
