package wecomkf

import (
	"context"
	"strconv"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// ServiceState is a customer's state in WeCom's own session state machine
// (service_state) of a customer-service account.
type ServiceState int

// The service states. Which moves the API may make (the provider's table):
// 0 → 1, 2, 3; 1 → 2, 3; 2 → 3; 3 → 3 (transfer), 4. State 4 cannot be
// left through the API: the customer's next message puts them in 0.
const (
	// StateUntreated: the customer just wrote; the API may reply.
	StateUntreated ServiceState = 0
	// StateAssistant: received by a "smart assistant", i.e. by the API
	// (our bot, or our agents answering through the API); the API may
	// reply.
	StateAssistant ServiceState = 1
	// StatePool: waiting in WeCom's pending pool for a WeCom servicer; the
	// API may not reply (95018).
	StatePool ServiceState = 2
	// StateHuman: served by a WeCom servicer in the WeCom client
	// (servicer_userid); the API may not reply.
	StateHuman ServiceState = 3
	// StateEnded: ended or not started.
	StateEnded ServiceState = 4
)

// String names the state.
func (s ServiceState) String() string {
	switch s {
	case StateUntreated:
		return "untreated"
	case StateAssistant:
		return "assistant"
	case StatePool:
		return "pool"
	case StateHuman:
		return "human"
	case StateEnded:
		return "ended"
	}
	return "state_" + strconv.Itoa(int(s))
}

// Reception says who answers a customer once a human takes over, which
// decides how our session states map to WeCom's.
type Reception int

const (
	// ReceptionAPI: agents work in Switchboard's console and reply through
	// send_msg. WeCom only lets the API write in states 0 and 1, so the
	// customer stays in 1 (StateAssistant) for the whole session, queued
	// and with an agent included; WeCom's pool and servicers are not
	// used.
	ReceptionAPI Reception = iota
	// ReceptionWeCom: agents are WeCom servicers answering in the WeCom
	// client; Switchboard runs the bot and the queue and hands the customer
	// over: queued and offered → 2 (pool), active → 3 (the agent's WeCom
	// userid as servicer), wrap-up and closed → 4.
	ReceptionWeCom
)

// StateForSession maps a Switchboard session state ("bot", "queued",
// "offered", "active", "wrapup", "closed") to the service state to put the
// customer in, for a reception mode:
//
//	session   ReceptionAPI   ReceptionWeCom
//	bot       1 assistant    1 assistant
//	queued    1 assistant    2 pool
//	offered   1 assistant    2 pool
//	active    1 assistant    3 human (needs the servicer)
//	wrapup    1 assistant    4 ended
//	closed    1 assistant    4 ended
//
// In ReceptionAPI nothing but 1 works: 2 and 3 would silence our replies,
// and WeCom lets the API end (4) only a session held by a servicer. An
// unknown session state is errs.Invalid.
func StateForSession(sessionState string, r Reception) (ServiceState, error) {
	const op = "wecomkf.StateForSession"
	switch sessionState {
	case "bot", "queued", "offered", "active", "wrapup", "closed":
	default:
		return 0, errs.E(op, errs.Invalid, "unknown session state %q", sessionState)
	}
	if r == ReceptionAPI {
		return StateAssistant, nil
	}
	switch sessionState {
	case "bot":
		return StateAssistant, nil
	case "queued", "offered":
		return StatePool, nil
	case "active":
		return StateHuman, nil
	}
	return StateEnded, nil
}

// stateRequest is the body of service_state/trans and service_state/get.
type stateRequest struct {
	OpenKfID       string `json:"open_kfid"`
	ExternalUserID string `json:"external_userid"`
	ServiceState   *int   `json:"service_state,omitempty"`
	ServicerUserID string `json:"servicer_userid,omitempty"`
}

// SetState moves a customer to state (service_state/trans); servicerUserID
// (an activated WeCom user receiving for the account) is required for
// StateHuman and ignored otherwise. Use TransState for the msg_code.
func (a *Adapter) SetState(ctx context.Context, acct channels.Account, externalUserID string, state ServiceState, servicerUserID string) error {
	_, err := a.TransState(ctx, acct, externalUserID, state, servicerUserID)
	return err
}

// TransState is SetState returning the msg_code WeCom hands out when the
// customer first enters the pool or a servicer's hands (queue notice,
// greeting) or the session ends (goodbye): one SendOnEvent message may use
// it. State 0 is not a target and is errs.Invalid, as is StateHuman
// without a servicer. A move WeCom refuses is errs.Conflict (95016); other
// failures are classified like the sender's, with an *APIError cause.
func (a *Adapter) TransState(ctx context.Context, acct channels.Account, externalUserID string, state ServiceState, servicerUserID string) (string, error) {
	const op = "wecomkf.SetState"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return "", &errs.Error{Op: op, Code: errs.Unauthorized, Msg: "account " + acct.ID + " credentials", Err: err}
	}
	switch {
	case externalUserID == "":
		return "", errs.E(op, errs.Invalid, "external_userid: required")
	case state < StateAssistant || state > StateEnded:
		return "", errs.E(op, errs.Invalid, "service_state %d: the API can move a customer to 1..4", int(state))
	case state == StateHuman && servicerUserID == "":
		return "", errs.E(op, errs.Invalid, "servicer_userid: required to hand a customer to a servicer (state 3)")
	}
	s := int(state)
	req := stateRequest{OpenKfID: creds.OpenKfID, ExternalUserID: externalUserID, ServiceState: &s}
	if state == StateHuman {
		req.ServicerUserID = servicerUserID
	}
	var ans struct {
		MsgCode string `json:"msg_code"`
	}
	if err := a.call(ctx, &creds, pathStateTrans, req, &ans); err != nil {
		return "", opError(op, err)
	}
	return ans.MsgCode, nil
}

// GetState returns a customer's service state and, in StateHuman, the
// servicer's userid (service_state/get). Failures are classified like
// TransState's.
func (a *Adapter) GetState(ctx context.Context, acct channels.Account, externalUserID string) (ServiceState, string, error) {
	const op = "wecomkf.GetState"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return 0, "", &errs.Error{Op: op, Code: errs.Unauthorized, Msg: "account " + acct.ID + " credentials", Err: err}
	}
	if externalUserID == "" {
		return 0, "", errs.E(op, errs.Invalid, "external_userid: required")
	}
	var ans struct {
		ServiceState   *int   `json:"service_state"`
		ServicerUserID string `json:"servicer_userid"`
	}
	if err := a.call(ctx, &creds, pathStateGet, stateRequest{OpenKfID: creds.OpenKfID, ExternalUserID: externalUserID}, &ans); err != nil {
		return 0, "", opError(op, err)
	}
	if ans.ServiceState == nil {
		return 0, "", errs.E(op, errs.Internal, "service_state/get answered without service_state")
	}
	return ServiceState(*ans.ServiceState), ans.ServicerUserID, nil
}
