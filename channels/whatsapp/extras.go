package whatsapp

import (
	"encoding/json"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// Extras are facts of an inbound WhatsApp message that channels.Inbound
// has no field for; they stay in Inbound.Raw and are read from there.
type Extras struct {
	// Forwarded marks a message the customer forwarded rather than wrote;
	// FrequentlyForwarded one forwarded many times (chain messages).
	Forwarded           bool
	FrequentlyForwarded bool
	// Referral is set when the customer came from a click-to-WhatsApp ad
	// or post: the attribution of the conversation.
	Referral *Referral
}

// Referral is the ad or post a customer clicked to start writing.
type Referral struct {
	SourceURL    string `json:"source_url,omitempty"`
	SourceID     string `json:"source_id,omitempty"`
	SourceType   string `json:"source_type,omitempty"`
	Headline     string `json:"headline,omitempty"`
	Body         string `json:"body,omitempty"`
	MediaType    string `json:"media_type,omitempty"`
	ImageURL     string `json:"image_url,omitempty"`
	VideoURL     string `json:"video_url,omitempty"`
	ThumbnailURL string `json:"thumbnail_url,omitempty"`
	// CTWAClickID identifies the ad click for conversion reporting.
	CTWAClickID string `json:"ctwa_clid,omitempty"`
}

// InboundExtras reads the Extras of a message this adapter parsed.
func InboundExtras(in channels.Inbound) (Extras, error) {
	var m struct {
		Context  *msgContext `json:"context"`
		Referral *Referral   `json:"referral"`
	}
	if err := json.Unmarshal(in.Raw, &m); err != nil {
		return Extras{}, errs.E("whatsapp.InboundExtras", errs.Invalid, "raw message: %s", jsonProblem(err))
	}
	var x Extras
	if m.Context != nil {
		x.Forwarded = m.Context.Forwarded || m.Context.FrequentlyForwarded
		x.FrequentlyForwarded = m.Context.FrequentlyForwarded
	}
	x.Referral = m.Referral
	return x, nil
}
