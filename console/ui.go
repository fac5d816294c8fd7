package console

import (
	"embed"
	"io/fs"
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/filesystem"
)

//go:embed web
var webFS embed.FS

// ui serves the embedded console at / and the chat widget at /chat.
func (s *Server) ui() {
	sub, _ := fs.Sub(webFS, "web")
	s.app.Get("/chat", func(c *fiber.Ctx) error {
		b, err := fs.ReadFile(sub, "chat.html")
		if err != nil {
			return err
		}
		c.Type("html")
		return c.Send(b)
	})
	s.app.Use("/", filesystem.New(filesystem.Config{Root: http.FS(sub), Index: "index.html"}))
}
