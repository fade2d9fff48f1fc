// Where the identity provider sends the browser back after login (the console's redirect URI
// is this origin plus this path). Kept apart from oidc.ts so the OIDC code loads only when used.
export const CALLBACK = "/login/callback";
