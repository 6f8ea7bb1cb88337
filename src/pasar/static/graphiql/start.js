// pasar's GraphiQL: every file from this server; queries over HTTP, subscriptions over a
// websocket (graphql-transport-ws); a signed-in dashboard user's token fills the auth header.
import { authHeaders } from "../session.js";

const EXAMPLE = `# pasar's GraphQL playground. Run a query with Ctrl-Enter.
# The schema (explorer, docs) is shown to signed-in callers: sign in on the
# dashboard (/) and open this page from there, or put your token in Headers.
{
  tools {
    id
    description
  }
}
`;

const headers = authHeaders();
const url = new URL("/graphql", window.location.href);
const socket = new URL(url);
socket.protocol = url.protocol === "https:" ? "wss:" : "ws:";

const fetcher = GraphiQL.createFetcher({
  url: url.href,
  subscriptionUrl: socket.href,
  wsConnectionParams: headers, // browsers cannot set headers on a websocket: connection_init
});

function Playground() {
  return React.createElement(GraphiQL, {
    fetcher,
    defaultQuery: EXAMPLE,
    defaultHeaders: Object.keys(headers).length ? JSON.stringify(headers, null, 2) : undefined,
    defaultEditorToolsVisibility: Object.keys(headers).length ? "headers" : true,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    isHeadersEditorEnabled: true,
    shouldPersistHeaders: false,
    // GraphiQL's tabs and history keep each query's headers: keep them for this tab only, where
    // the session already is, never in localStorage
    storage: window.sessionStorage,
    inputValueDeprecation: true,
  });
}

ReactDOM.createRoot(document.getElementById("graphiql")).render(React.createElement(Playground));
