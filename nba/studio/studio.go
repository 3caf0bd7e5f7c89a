// Package studio is nba's web UI, embedded in the binary and served by
// nba serve on the admin listener under /ui/ (see nba/server's studio.go
// for the routes). It is a page of hand-written HTML, CSS and JavaScript
// with no build step and nothing fetched from elsewhere: the page reads
// its route from the browser's address and asks the sidecar's own API
// (under /ui/api/) for what it shows. Its charts are drawn by Chart.js,
// vendored as built by its npm package (assets/vendor, with its licence;
// the README says how to update it).
package studio

import (
	"embed"
	"mime"
	"path"
	"strings"

	"github.com/valyala/fasthttp"
)

//go:embed assets
var assets embed.FS

// StaticPrefix is where the page's scripts and styles are served.
const StaticPrefix = "/ui/static/"

// Serve answers GET path (under /ui/): a file under StaticPrefix, else the
// page itself, which routes on the client.
func Serve(ctx *fasthttp.RequestCtx, p string) {
	h := &ctx.Response.Header
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	h.Set("Content-Security-Policy", "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; form-action 'self'")
	name := "index.html"
	if rest, ok := strings.CutPrefix(p, StaticPrefix); ok {
		name = path.Clean(rest)
		if name == "index.html" || strings.HasPrefix(name, ".") {
			name = ""
		}
	}
	b, err := assets.ReadFile("assets/" + name)
	if err != nil || name == "" {
		ctx.SetStatusCode(fasthttp.StatusNotFound)
		ctx.SetContentType("text/plain; charset=utf-8")
		ctx.SetBodyString("no such file in the studio\n")
		return
	}
	ct := mime.TypeByExtension(path.Ext(name))
	if ct == "" {
		ct = "application/octet-stream"
	}
	ctx.SetContentType(ct)
	h.Set("Cache-Control", "no-cache")
	ctx.SetBody(b)
}
