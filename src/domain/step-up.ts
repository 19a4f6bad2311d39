/**
 * The sensitive operations (docs/step-up.md): the one list. Each needs a
 * factor performed within STEP_UP_MAX_AGE_SECONDS in the calling session —
 * a second factor on an account that has one (a trusted device standing in
 * for it never counts), the password on an account without one — or it is
 * answered 401 STEP_UP_REQUIRED (src/platform/http/step-up.ts). The app puts
 * the gate on exactly these operations and refuses to start if one of them
 * has no route. The admin API is not here: admin keys have their own scopes.
 */
export interface SensitiveOperation {
  operationId: string;
  method: 'POST' | 'DELETE';
  path: string;
  what: string;
}

export const SENSITIVE_OPERATIONS: readonly SensitiveOperation[] = [
  { operationId: 'disableMfa', method: 'POST', path: '/api/v1/mfa/deactivate', what: 'turn two-factor authentication (TOTP) off' },
  { operationId: 'regenerateBackupCodes', method: 'POST', path: '/api/v1/mfa/backup-codes/regenerate', what: 'regenerate the backup codes' },
  { operationId: 'webauthnRegisterOptions', method: 'POST', path: '/api/v1/mfa/webauthn/register/options', what: 'add a passkey or security key (start)' },
  { operationId: 'webauthnRegisterVerify', method: 'POST', path: '/api/v1/mfa/webauthn/register/verify', what: 'add a passkey or security key (finish)' },
  { operationId: 'removeWebauthnCredential', method: 'DELETE', path: '/api/v1/mfa/webauthn/credentials/{credential_id}', what: 'remove a passkey or security key' },
  { operationId: 'changePassword', method: 'POST', path: '/api/v1/auth/password/change', what: 'change the password' },
  { operationId: 'revokeAllDevices', method: 'DELETE', path: '/api/v1/devices/', what: 'revoke every trusted device' },
  { operationId: 'endSessions', method: 'DELETE', path: '/api/v1/sessions/', what: 'sign out everywhere (with or without except_current)' },
];

export const SENSITIVE_OPERATION_IDS: readonly string[] = SENSITIVE_OPERATIONS.map((o) => o.operationId);
