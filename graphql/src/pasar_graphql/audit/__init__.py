"""The audit log for admins: `auditLog` and `scopeUsage`."""
