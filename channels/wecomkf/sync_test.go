package wecomkf_test

import (
	"context"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/channels/wecomkf/wecomkftest"
	"github.com/switchboard-acd/switchboard/internal/errs"
	"github.com/switchboard-acd/switchboard/internal/testenv"
)

// richLog is a message log with every kind of item the adapter reads.
func richLog(f *wecomkftest.Server) []json.RawMessage {
	return []json.RawMessage{
		f.SystemEvent("ev-enter", map[string]any{"event_type": "enter_session", "external_userid": "wm1", "scene": "ad_spring", "scene_param": "campaign%3D7", "welcome_code": "WELCOME1"}),
		f.Customer("m-text", "wm1", "text", map[string]any{"content": "我要转人工"}),
		f.Customer("m-menu", "wm1", "text", map[string]any{"content": "满意", "menu_id": "csat_5"}),
		f.Customer("m-img", "wm1", "image", map[string]any{"media_id": "MEDIA_IMG"}),
		f.Customer("m-voice", "wm1", "voice", map[string]any{"media_id": "MEDIA_VOICE"}),
		f.Customer("m-video", "wm1", "video", map[string]any{"media_id": "MEDIA_VIDEO"}),
		f.Customer("m-file", "wm1", "file", map[string]any{"media_id": "MEDIA_FILE"}),
		f.Customer("m-loc", "wm1", "location", map[string]any{"latitude": 23.1291, "longitude": 113.2644, "name": "广州塔", "address": "阅江西路222号"}),
		f.Customer("m-link", "wm1", "link", map[string]any{"title": "Order 42", "desc": "shipped", "url": "https://shop.example/o/42", "pic_url": "https://shop.example/p.png"}),
		f.Customer("m-card", "wm1", "business_card", map[string]any{"userid": "zhangsan"}),
		f.Customer("m-mini", "wm1", "miniprogram", map[string]any{"appid": "wxmini", "title": "Coupon", "pagepath": "pages/c"}),
		f.Customer("m-new", "wm1", "future_type", map[string]any{"x": 1}),
		f.Servicer("m-servicer", "wm1", "zhangsan", "typed in the WeCom client"),
		f.SystemEvent("ev-fail", map[string]any{"event_type": "msg_send_fail", "external_userid": "wm1", "fail_msgid": "our-msg-1", "fail_type": 6}),
		f.SystemEvent("ev-session", map[string]any{"event_type": "session_status_change", "external_userid": "wm1", "change_type": 1, "new_servicer_userid": "zhangsan", "msg_code": "MC1"}),
		f.SystemEvent("ev-servicer", map[string]any{"event_type": "servicer_status_change", "servicer_userid": "lisi", "status": 2}),
		f.SystemEvent("ev-other-kf", map[string]any{"event_type": "enter_session", "external_userid": "wm9", "open_kfid": "wkother"}),
	}
}

func TestPullPagesEverything(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.fake.PageSize = 5
		e.fake.AddMessages(richLog(e.fake)...)
		door, tok := e.fake.Doorbell(t, hookURL)
		res, err := e.a.Webhook(ctx, e.acct, door)
		if err != nil || !res.Pull {
			t.Fatalf("doorbell: %+v %v", res, err)
		}
		var all wecomkf.Page
		cursor := ""
		for pages := 0; ; pages++ {
			if pages > 10 {
				t.Fatal("no end of pages")
			}
			p, err := e.a.PullPage(ctx, e.acct, cursor, res.PullToken)
			if err != nil {
				t.Fatal(err)
			}
			all.Inbound = append(all.Inbound, p.Inbound...)
			all.Statuses = append(all.Statuses, p.Statuses...)
			all.Events = append(all.Events, p.Events...)
			all.Skipped += p.Skipped
			if p.Next == "" || p.Next == cursor {
				t.Fatalf("page %d: cursor did not move (%q)", pages, p.Next)
			}
			cursor = p.Next
			if !p.HasMore {
				break
			}
		}
		at := start
		want := []channels.Inbound{
			{ChannelMsgID: "ev-enter", Type: channels.MsgEvent, Event: &channels.Event{Kind: channels.EventEnterSession, Scene: "ad_spring", Key: "campaign%3D7", Name: "enter_session"}},
			{ChannelMsgID: "m-text", Type: channels.MsgText, Text: "我要转人工"},
			{ChannelMsgID: "m-menu", Type: channels.MsgInteractive, Text: "满意", Choice: &channels.Choice{ID: "csat_5", Title: "满意"}},
			{ChannelMsgID: "m-img", Type: channels.MsgImage, Media: &channels.Media{ID: "MEDIA_IMG"}},
			{ChannelMsgID: "m-voice", Type: channels.MsgAudio, Media: &channels.Media{ID: "MEDIA_VOICE", MIMEType: "audio/amr", Voice: true}},
			{ChannelMsgID: "m-video", Type: channels.MsgVideo, Media: &channels.Media{ID: "MEDIA_VIDEO"}},
			{ChannelMsgID: "m-file", Type: channels.MsgDocument, Media: &channels.Media{ID: "MEDIA_FILE"}},
			{ChannelMsgID: "m-loc", Type: channels.MsgLocation, Text: "广州塔", Location: &channels.Location{Latitude: 23.1291, Longitude: 113.2644, Name: "广州塔", Address: "阅江西路222号"}},
			{ChannelMsgID: "m-link", Type: channels.MsgText, Text: "Order 42\nshipped\nhttps://shop.example/o/42"},
			{ChannelMsgID: "m-card", Type: channels.MsgContacts, Text: "zhangsan"},
			{ChannelMsgID: "m-mini", Type: channels.MsgUnsupported, Text: "Coupon\npages/c"},
			{ChannelMsgID: "m-new", Type: channels.MsgUnsupported},
		}
		for i := range want {
			want[i].AccountID, want[i].ExternalID, want[i].ReceivedAt = "a-kf", "wm1", at
		}
		if diff := cmp.Diff(want, all.Inbound, cmpopts.IgnoreFields(channels.Inbound{}, "Raw")); diff != "" {
			t.Errorf("inbound (-want +got):\n%s", diff)
		}
		for _, in := range all.Inbound {
			var m map[string]any
			if err := json.Unmarshal(in.Raw, &m); err != nil || m["msgid"] != in.ChannelMsgID {
				t.Errorf("%s: raw %s", in.ChannelMsgID, in.Raw)
			}
		}
		if got := wecomkf.WelcomeCode(all.Inbound[0]); got != "WELCOME1" {
			t.Errorf("WelcomeCode = %q", got)
		}
		if got := wecomkf.WelcomeCode(all.Inbound[1]); got != "" {
			t.Errorf("WelcomeCode of a text = %q", got)
		}
		wantStatus := []channels.StatusUpdate{{AccountID: "a-kf", ChannelMsgID: "our-msg-1", ExternalID: "wm1", Status: channels.StatusFailed,
			Code: "fail_type_6", Error: "over the 5-message limit", At: at}}
		if diff := cmp.Diff(wantStatus, all.Statuses); diff != "" {
			t.Errorf("statuses (-want +got):\n%s", diff)
		}
		if len(all.Events) != 2 || all.Events[0].Type != wecomkf.EventTypeSessionState || all.Events[0].ChangeType != 1 ||
			all.Events[0].NewServicerUserID != "zhangsan" || all.Events[0].MsgCode != "MC1" || all.Events[0].ExternalUserID != "wm1" ||
			all.Events[1].Type != wecomkf.EventTypeServicerState || all.Events[1].ServicerUserID != "lisi" || all.Events[1].Status != 2 {
			t.Errorf("events: %+v", all.Events)
		}
		if all.Skipped != 2 {
			t.Errorf("skipped %d, want 2 (servicer message, other account)", all.Skipped)
		}

		calls := e.fake.SyncCalls()
		if len(calls) != 4 {
			t.Fatalf("%d sync calls, want 4 pages of 5", len(calls))
		}
		for i, c := range calls {
			if c.Token != tok || c.Limit != wecomkf.SyncLimit || c.OpenKfID != e.fake.OpenKfID || c.VoiceFormat != 0 {
				t.Errorf("call %d: %+v", i, c)
			}
		}
		if calls[0].Cursor != "" || calls[1].Cursor == "" {
			t.Errorf("cursors: %q then %q", calls[0].Cursor, calls[1].Cursor)
		}
		if n := e.fake.TokenCalls(); n != 1 {
			t.Errorf("%d gettoken calls, want 1", n)
		}

		// Nothing new: the same cursor comes back without more.
		p, err := e.a.Pull(ctx, e.acct, cursor, "")
		if err != nil || len(p.Inbound) != 0 || p.HasMore || p.Next == "" {
			t.Errorf("empty pull: %+v, %v", p, err)
		}
	})
}

func TestPullStaleSyncToken(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		e.fake.AddMessages(e.fake.Customer("m1", "wm1", "text", map[string]any{"content": "hi"}))
		p, err := e.a.Pull(context.Background(), e.acct, "", "ENCexpired")
		if err != nil || len(p.Inbound) != 1 {
			t.Fatalf("pull with a stale token: %+v, %v", p, err)
		}
		calls := e.fake.SyncCalls()
		if len(calls) != 2 || calls[0].Token != "ENCexpired" || calls[1].Token != "" {
			t.Errorf("calls %+v, want a retry without the token", calls)
		}
	})
}

func TestPullErrors(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		for _, tc := range []struct {
			errcode int
			code    errs.Code
			retry   bool
		}{
			{-1, errs.Unavailable, true},
			{45009, errs.RateLimited, true},
			{95000, errs.Invalid, false},
			{48002, errs.Forbidden, false},
		} {
			e.fake.FailNext("/cgi-bin/kf/sync_msg", 1, tc.errcode, "injected")
			_, err := e.a.Pull(ctx, e.acct, "", "")
			var ae *wecomkf.APIError
			var r channels.Retryable
			if !errs.Is(err, tc.code) || !errors.As(err, &ae) || ae.Code != tc.errcode || !errors.As(err, &r) || r.Retryable() != tc.retry {
				t.Errorf("errcode %d: %v (code %s), want %s retry %v", tc.errcode, err, errs.CodeOf(err), tc.code, tc.retry)
			}
			if d := errs.DetailsOf(err); d["errcode"] != tc.errcode {
				t.Errorf("errcode %d: details %v", tc.errcode, d)
			}
		}
		// An unknown cursor is refused by the provider.
		if _, err := e.a.Pull(ctx, e.acct, "no-such-cursor", ""); !errs.Is(err, errs.Invalid) {
			t.Errorf("bad cursor: %v", err)
		}
	})
}

func TestParseSyncSample(t *testing.T) {
	body := testenv.ChannelSample(t, "wecom_kf_sync_msg_response.json")
	var sample struct {
		NextCursor string `json:"next_cursor"`
		MsgList    []struct {
			MsgID    string `json:"msgid"`
			OpenKfID string `json:"open_kfid"`
			User     string `json:"external_userid"`
			SendTime int64  `json:"send_time"`
		} `json:"msg_list"`
	}
	if err := json.Unmarshal(body, &sample); err != nil || len(sample.MsgList) != 1 {
		t.Fatalf("sample: %v", err)
	}
	s := sample.MsgList[0]
	p, err := wecomkf.ParseSyncResponse("a", s.OpenKfID, body, start)
	if err != nil {
		t.Fatal(err)
	}
	if p.Next != sample.NextCursor || !p.HasMore || len(p.Inbound) != 1 {
		t.Fatalf("page %+v", p)
	}
	in := p.Inbound[0]
	// The documented example has the placeholder msgtype "MSG_TYPE".
	if in.ChannelMsgID != s.MsgID || in.ExternalID != s.User || in.Type != channels.MsgUnsupported || !in.ReceivedAt.Equal(time.Unix(s.SendTime, 0)) {
		t.Errorf("inbound %+v", in)
	}
	if _, err := wecomkf.ParseSyncResponse("a", "wkother", body, start); err != nil {
		t.Fatal(err)
	}
	if _, err := wecomkf.ParseSyncResponse("a", s.OpenKfID, []byte(`{"errcode":40014,"errmsg":"invalid access_token"}`), start); !errs.Is(err, errs.Unauthorized) {
		t.Errorf("errcode answer: %v", err)
	}
	if _, err := wecomkf.ParseSyncResponse("a", s.OpenKfID, []byte(`<html>`), start); !errs.Is(err, errs.Invalid) {
		t.Errorf("html answer: %v", err)
	}
}

// TestRequestShapesMatchSamples checks the JSON our calls send against the
// documented request samples, key for key.
func TestRequestShapesMatchSamples(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		keys := func(b []byte) []string {
			var m map[string]json.RawMessage
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatalf("%s: %v", b, err)
			}
			return slices.Sorted(maps.Keys(m))
		}
		// A pull from a cursor with a token sends every field.
		_, tok := e.fake.Doorbell(t, hookURL)
		p, err := e.a.Pull(ctx, e.acct, "", tok)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := e.a.Pull(ctx, e.acct, p.Next, tok); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(keys(testenv.ChannelSample(t, "wecom_kf_sync_msg_request.json")), keys(e.fake.LastRequest("/cgi-bin/kf/sync_msg"))); diff != "" {
			t.Errorf("sync_msg keys (-sample +ours):\n%s", diff)
		}
		e.fake.AddServicer("zhangsan")
		if err := e.a.SetState(ctx, e.acct, "wm1", wecomkf.StateHuman, "zhangsan"); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(keys(testenv.ChannelSample(t, "wecom_kf_service_state_trans_request.json")), keys(e.fake.LastRequest("/cgi-bin/kf/service_state/trans"))); diff != "" {
			t.Errorf("service_state/trans keys (-sample +ours):\n%s", diff)
		}
		var get struct {
			Request json.RawMessage `json:"request"`
		}
		if err := json.Unmarshal(testenv.ChannelSample(t, "wecom_kf_service_state_get.json"), &get); err != nil {
			t.Fatal(err)
		}
		if _, _, err := e.a.GetState(ctx, e.acct, "wm1"); err != nil {
			t.Fatal(err)
		}
		if diff := cmp.Diff(keys(get.Request), keys(e.fake.LastRequest("/cgi-bin/kf/service_state/get"))); diff != "" {
			t.Errorf("service_state/get keys (-sample +ours):\n%s", diff)
		}
	})
}
