package wecomkf_test

import (
	"context"
	"errors"
	"testing"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/channels/wecomkf"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

func TestServiceStates(t *testing.T) {
	forKinds(t, func(t *testing.T, e *env) {
		ctx := context.Background()
		e.fake.AddServicer("zhangsan")
		e.fake.AddServicer("lisi")
		get := func() (wecomkf.ServiceState, string) {
			t.Helper()
			s, servicer, err := e.a.GetState(ctx, e.acct, "wm1")
			if err != nil {
				t.Fatal(err)
			}
			return s, servicer
		}
		if s, _ := get(); s != wecomkf.StateUntreated {
			t.Fatalf("initial state %v", s)
		}
		if err := e.a.SetState(ctx, e.acct, "wm1", wecomkf.StateAssistant, "ignored"); err != nil {
			t.Fatal(err)
		}
		if s, servicer := get(); s != wecomkf.StateAssistant || servicer != "" {
			t.Errorf("after 1: %v %q", s, servicer)
		}
		code, err := e.a.TransState(ctx, e.acct, "wm1", wecomkf.StatePool, "")
		if err != nil || code == "" {
			t.Errorf("into the pool: code %q, %v (want a msg_code for the queue notice)", code, err)
		}
		// Local refusals: no call reaches WeCom.
		before := e.fake.Calls("/cgi-bin/kf/service_state/trans")
		for name, tc := range map[string]struct {
			user     string
			state    wecomkf.ServiceState
			servicer string
		}{
			"human without servicer": {"wm1", wecomkf.StateHuman, ""},
			"to untreated":           {"wm1", wecomkf.StateUntreated, ""},
			"out of range":           {"wm1", 9, ""},
			"no user":                {"", wecomkf.StateAssistant, ""},
		} {
			if err := e.a.SetState(ctx, e.acct, tc.user, tc.state, tc.servicer); !errs.Is(err, errs.Invalid) {
				t.Errorf("%s: %v, want invalid", name, err)
			}
		}
		if n := e.fake.Calls("/cgi-bin/kf/service_state/trans"); n != before {
			t.Errorf("%d local refusals reached WeCom", n-before)
		}
		// Provider refusals.
		if err := e.a.SetState(ctx, e.acct, "wm1", wecomkf.StateHuman, "stranger"); !errs.Is(err, errs.Invalid) || errs.DetailsOf(err)["errcode"] != 95014 {
			t.Errorf("unknown servicer: %v", err)
		}
		if err := e.a.SetState(ctx, e.acct, "wm1", wecomkf.StateHuman, "zhangsan"); err != nil {
			t.Fatal(err)
		}
		if s, servicer := get(); s != wecomkf.StateHuman || servicer != "zhangsan" {
			t.Errorf("after 3: %v %q", s, servicer)
		}
		if err := e.a.SetState(ctx, e.acct, "wm1", wecomkf.StateHuman, "lisi"); err != nil {
			t.Errorf("transfer 3→3: %v", err)
		}
		err = e.a.SetState(ctx, e.acct, "wm1", wecomkf.StateAssistant, "")
		var ae *wecomkf.APIError
		if !errs.Is(err, errs.Conflict) || !errors.As(err, &ae) || ae.Code != 95016 || ae.Retryable() {
			t.Errorf("3→1: %v, want conflict 95016", err)
		}
		if code, err := e.a.TransState(ctx, e.acct, "wm1", wecomkf.StateEnded, ""); err != nil || code == "" {
			t.Errorf("end: %q %v (want a goodbye msg_code)", code, err)
		}
		e.fake.FailNext("/cgi-bin/kf/service_state/get", 1, -1, "busy")
		_, _, err = e.a.GetState(ctx, e.acct, "wm1")
		var r channels.Retryable
		if !errs.Is(err, errs.Unavailable) || !errors.As(err, &r) || !r.Retryable() {
			t.Errorf("busy: %v", err)
		}
	})
}

func TestStateForSession(t *testing.T) {
	for _, tc := range []struct {
		session  string
		api, wec wecomkf.ServiceState
	}{
		{"bot", wecomkf.StateAssistant, wecomkf.StateAssistant},
		{"queued", wecomkf.StateAssistant, wecomkf.StatePool},
		{"offered", wecomkf.StateAssistant, wecomkf.StatePool},
		{"active", wecomkf.StateAssistant, wecomkf.StateHuman},
		{"wrapup", wecomkf.StateAssistant, wecomkf.StateEnded},
		{"closed", wecomkf.StateAssistant, wecomkf.StateEnded},
	} {
		if got, err := wecomkf.StateForSession(tc.session, wecomkf.ReceptionAPI); err != nil || got != tc.api {
			t.Errorf("%s/api = %v %v, want %v", tc.session, got, err, tc.api)
		}
		if got, err := wecomkf.StateForSession(tc.session, wecomkf.ReceptionWeCom); err != nil || got != tc.wec {
			t.Errorf("%s/wecom = %v %v, want %v", tc.session, got, err, tc.wec)
		}
	}
	if _, err := wecomkf.StateForSession("limbo", wecomkf.ReceptionWeCom); !errs.Is(err, errs.Invalid) {
		t.Errorf("unknown state: %v", err)
	}
	if wecomkf.StatePool.String() != "pool" || wecomkf.ServiceState(7).String() != "state_7" {
		t.Error("String")
	}
}
