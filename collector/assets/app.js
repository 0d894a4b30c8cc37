// Forewarn dashboard script: small glue around htmx, served at
// asset_url("app.js"). Pages must stay readable with JavaScript off.
