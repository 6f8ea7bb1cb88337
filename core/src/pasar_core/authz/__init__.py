"""Who may do what: roles in organisations, the policy table, and the checks that read it.

- `roles`: the three roles and their order.
- `policy`: the table (operation name -> rule) both API surfaces name their operations in.
- `checks`: `require` (the caller's role against an operation) and `check_resource` (one
  resource: owned, shared with the caller's organisation, or invisible).
"""
