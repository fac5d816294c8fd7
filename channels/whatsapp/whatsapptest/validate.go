package whatsapptest

import (
	"encoding/json"
	"fmt"
	"unicode/utf8"
)

// request is a send or mark-read body as the Cloud API reads it.
type request struct {
	MessagingProduct string `json:"messaging_product"`
	RecipientType    string `json:"recipient_type"`
	To               string `json:"to"`
	Type             string `json:"type"`
	Status           string `json:"status"`
	MessageID        string `json:"message_id"`
	Context          *struct {
		MessageID string `json:"message_id"`
	} `json:"context"`
	Text *struct {
		Body       string `json:"body"`
		PreviewURL bool   `json:"preview_url"`
	} `json:"text"`
	Image       *media `json:"image"`
	Audio       *media `json:"audio"`
	Video       *media `json:"video"`
	Document    *media `json:"document"`
	Sticker     *media `json:"sticker"`
	Interactive *struct {
		Type   string `json:"type"`
		Header *struct {
			Type string `json:"type"`
			Text string `json:"text"`
		} `json:"header"`
		Body struct {
			Text string `json:"text"`
		} `json:"body"`
		Footer *struct {
			Text string `json:"text"`
		} `json:"footer"`
		Action struct {
			Buttons []struct {
				Type  string `json:"type"`
				Reply struct {
					ID    string `json:"id"`
					Title string `json:"title"`
				} `json:"reply"`
			} `json:"buttons"`
			Button   string `json:"button"`
			Sections []struct {
				Title string `json:"title"`
				Rows  []struct {
					ID          string `json:"id"`
					Title       string `json:"title"`
					Description string `json:"description"`
				} `json:"rows"`
			} `json:"sections"`
		} `json:"action"`
	} `json:"interactive"`
	Template *struct {
		Name     string `json:"name"`
		Language struct {
			Code   string `json:"code"`
			Policy string `json:"policy"`
		} `json:"language"`
		Components json.RawMessage `json:"components"`
	} `json:"template"`
	Location *struct {
		Latitude  *float64 `json:"latitude"`
		Longitude *float64 `json:"longitude"`
	} `json:"location"`
}

type media struct {
	ID       string `json:"id"`
	Link     string `json:"link"`
	Caption  string `json:"caption"`
	Filename string `json:"filename"`
}

// validate returns why the Cloud API would refuse the send, or "".
func (r *request) validate() string {
	if r.RecipientType != "" && r.RecipientType != "individual" {
		return "recipient_type must be individual"
	}
	if normalise(r.To) == "" {
		return "The parameter to is required."
	}
	if r.Context != nil && r.Context.MessageID == "" {
		return "context.message_id is required"
	}
	switch r.Type {
	case "text":
		if r.Text == nil || r.Text.Body == "" {
			return "The parameter text['body'] is required."
		}
		if utf8.RuneCountInString(r.Text.Body) > 4096 {
			return "text.body is longer than 4096 characters"
		}
	case "image", "audio", "video", "document", "sticker":
		return r.validateMedia()
	case "interactive":
		return r.validateInteractive()
	case "template":
		t := r.Template
		if t == nil || t.Name == "" || t.Language.Code == "" {
			return "template.name and template.language.code are required"
		}
		if len(t.Components) > 0 {
			var comps []json.RawMessage
			if err := json.Unmarshal(t.Components, &comps); err != nil {
				return "template.components must be an array"
			}
		}
	case "location":
		if r.Location == nil || r.Location.Latitude == nil || r.Location.Longitude == nil {
			return "location.latitude and location.longitude are required"
		}
	case "":
		return "The parameter type is required."
	default:
		return fmt.Sprintf("type %q is not supported by the fake", r.Type)
	}
	return ""
}

func (r *request) validateMedia() string {
	m := map[string]*media{"image": r.Image, "audio": r.Audio, "video": r.Video, "document": r.Document, "sticker": r.Sticker}[r.Type]
	switch {
	case m == nil:
		return fmt.Sprintf("The parameter %s is required.", r.Type)
	case (m.ID == "") == (m.Link == ""):
		return fmt.Sprintf("%s needs exactly one of id and link", r.Type)
	case m.Caption != "" && (r.Type == "audio" || r.Type == "sticker"):
		return fmt.Sprintf("%s does not take a caption", r.Type)
	case m.Filename != "" && r.Type != "document":
		return fmt.Sprintf("%s does not take a filename", r.Type)
	case utf8.RuneCountInString(m.Caption) > 1024:
		return "caption is longer than 1024 characters"
	}
	return ""
}

func (r *request) validateInteractive() string {
	it := r.Interactive
	if it == nil {
		return "The parameter interactive is required."
	}
	if it.Body.Text == "" || utf8.RuneCountInString(it.Body.Text) > 1024 {
		return "interactive.body.text is required and at most 1024 characters"
	}
	if it.Header != nil && (it.Header.Type != "text" || utf8.RuneCountInString(it.Header.Text) > 60) {
		return "interactive.header must be text of at most 60 characters"
	}
	if it.Footer != nil && utf8.RuneCountInString(it.Footer.Text) > 60 {
		return "interactive.footer.text is at most 60 characters"
	}
	ids, titles := map[string]bool{}, map[string]bool{}
	unique := func(id, title string) string {
		if ids[id] {
			return "duplicate id " + id
		}
		if titles[title] {
			return "duplicate title " + title
		}
		ids[id], titles[title] = true, true
		return ""
	}
	switch it.Type {
	case "button":
		bs := it.Action.Buttons
		if len(bs) < 1 || len(bs) > 3 {
			return "interactive buttons: 1 to 3 buttons"
		}
		for _, b := range bs {
			if b.Type != "reply" {
				return "button type must be reply"
			}
			if b.Reply.ID == "" || utf8.RuneCountInString(b.Reply.ID) > 256 {
				return "button id: 1 to 256 characters"
			}
			if b.Reply.Title == "" || utf8.RuneCountInString(b.Reply.Title) > 20 {
				return "button title: 1 to 20 characters"
			}
			if why := unique(b.Reply.ID, b.Reply.Title); why != "" {
				return why
			}
		}
	case "list":
		if it.Action.Button == "" || utf8.RuneCountInString(it.Action.Button) > 20 {
			return "list button: 1 to 20 characters"
		}
		if len(it.Action.Sections) == 0 || len(it.Action.Sections) > 10 {
			return "list: 1 to 10 sections"
		}
		rows := 0
		for _, sec := range it.Action.Sections {
			if len(it.Action.Sections) > 1 && sec.Title == "" {
				return "section title is required with more than one section"
			}
			for _, row := range sec.Rows {
				rows++
				if row.ID == "" || utf8.RuneCountInString(row.ID) > 200 {
					return "row id: 1 to 200 characters"
				}
				if row.Title == "" || utf8.RuneCountInString(row.Title) > 24 {
					return "row title: 1 to 24 characters"
				}
				if utf8.RuneCountInString(row.Description) > 72 {
					return "row description: at most 72 characters"
				}
				if why := unique(row.ID, row.Title); why != "" {
					return why
				}
			}
		}
		if rows < 1 || rows > 10 {
			return "list: 1 to 10 rows in all"
		}
	default:
		return fmt.Sprintf("interactive type %q is not supported by the fake", it.Type)
	}
	return ""
}
