package wechat

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/switchboard-acd/switchboard/channels"
	"github.com/switchboard-acd/switchboard/internal/errs"
)

// UserInfo is what WeChat tells about a follower (cgi-bin/user/info).
// Since the end of 2021 it no longer returns nicknames or avatars, so
// Nickname is usually empty; UnionID is the point: the same person's id
// across every app bound to one Open Platform account, which lets contacts
// from several Official Accounts (and mini programs) merge.
type UserInfo struct {
	OpenID  string
	UnionID string
	// Subscribed is false when the customer no longer follows the account
	// (then WeChat returns nothing else).
	Subscribed   bool
	SubscribedAt time.Time
	Nickname     string
	Language     string
	Remark       string
	TagIDs       []int
	// SubscribeScene is how they came (ADD_SCENE_QR_CODE, ADD_SCENE_SEARCH...);
	// QRScene / QRSceneStr the parametric QR code, if any.
	SubscribeScene string
	QRScene        int64
	QRSceneStr     string
}

// userInfoAnswer is the JSON of cgi-bin/user/info.
type userInfoAnswer struct {
	Subscribe      int    `json:"subscribe"`
	OpenID         string `json:"openid"`
	Nickname       string `json:"nickname"`
	Language       string `json:"language"`
	SubscribeTime  int64  `json:"subscribe_time"`
	UnionID        string `json:"unionid"`
	Remark         string `json:"remark"`
	TagIDList      []int  `json:"tagid_list"`
	SubscribeScene string `json:"subscribe_scene"`
	QRScene        int64  `json:"qr_scene"`
	QRSceneStr     string `json:"qr_scene_str"`
}

// UserInfo looks a follower up by openid, for the UnionID that merges
// contacts across channels. An openid that is not the account's is
// errs.NotFound; refused credentials errs.Unauthorized; an outage or
// throttling errs.Unavailable (the cause is the classified
// *channels.SendError).
func (a *Adapter) UserInfo(ctx context.Context, acct channels.Account, openid string) (UserInfo, error) {
	const op = "wechat.UserInfo"
	creds, err := ParseCredentials(acct.Credentials)
	if err != nil {
		return UserInfo{}, errs.Wrap(op, err)
	}
	if strings.TrimSpace(openid) == "" {
		return UserInfo{}, errs.E(op, errs.Invalid, "openid: required")
	}
	var ans userInfoAnswer
	q := url.Values{"openid": {openid}, "lang": {"zh_CN"}}
	if se := a.call(ctx, &creds, http.MethodGet, "/cgi-bin/user/info", q, nil, &ans); se != nil {
		code := errs.Invalid
		switch {
		case se.Code == "40003" || se.Code == "46004":
			code = errs.NotFound
		case se.Auth:
			code = errs.Unauthorized
		case se.Retry:
			code = errs.Unavailable
		case se.Code == "48001":
			code = errs.Forbidden
		}
		return UserInfo{}, &errs.Error{Op: op, Code: code, Msg: "user info", Err: se}
	}
	u := UserInfo{
		OpenID: strings.TrimSpace(ans.OpenID), UnionID: strings.TrimSpace(ans.UnionID), Subscribed: ans.Subscribe == 1,
		Nickname: ans.Nickname, Language: ans.Language, Remark: ans.Remark, TagIDs: ans.TagIDList,
		SubscribeScene: ans.SubscribeScene, QRScene: ans.QRScene, QRSceneStr: ans.QRSceneStr,
	}
	if u.OpenID == "" {
		u.OpenID = openid
	}
	if ans.SubscribeTime > 0 {
		u.SubscribedAt = time.Unix(ans.SubscribeTime, 0)
	}
	return u, nil
}
