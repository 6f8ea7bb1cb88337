// Swagger UI for /openapi.json, every file from this server; a signed-in dashboard user's token
// is the bearer credential of "Try it out" (for this page only: never persisted).
import { readSession } from "../session.js";

const session = readSession();
const ui = SwaggerUIBundle({
  url: "/openapi.json",
  dom_id: "#swagger-ui",
  validatorUrl: null, // the default sends the document to validator.swagger.io
  deepLinking: false,
  persistAuthorization: false,
  onComplete: () => {
    if (session) ui.preauthorizeApiKey("bearer", session.access_token);
  },
});
