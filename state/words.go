package state

import (
	"fmt"
	"strings"
)

// words are the product's names for job and account states and its counts
// line (docs/requirements.md R6-R8), in English and Simplified Chinese: the CLI, the web pages and the
// notification mails all say them the same way.
var words = map[string]map[string]string{
	"en": {
		"created": "not started", "running": "running", "paused": "paused", "completed": "completed", "ended": "ended",
		"not_started": "not started", "preparing": "preparing", "in_progress": "in progress", "succeeded": "succeeded",
		"partial": "finished with failures", "failed": "failed", "abandoned": "abandoned",
		"counts":           "%d to import, %d imported, %d failed",
		"phase.first_pass": "first pass", "phase.synced": "synced at %s", "phase.closed": "closed at %s",
		// What a member reads of a move that did not succeed, in the
		// portal and in the mail: the reason itself (the old server's
		// address and replies) is the admin's.
		"member.failed":    "The move stopped before it finished. Your admin can see why.",
		"member.partial":   "Some messages could not be moved. Your admin has the list of them.",
		"member.abandoned": "This move was stopped by your admin.",
	},
	"zh": {
		"created": "未启动", "running": "搬家中", "paused": "搬家已暂停", "completed": "搬家已结束", "ended": "搬家已结束",
		"not_started": "未启动", "preparing": "准备中", "in_progress": "进行中", "succeeded": "搬家成功",
		"partial": "部分失败", "failed": "搬家失败", "abandoned": "放弃",
		"counts":           "总计需导入%d封邮件, 已成功导入%d封, 失败%d封",
		"phase.first_pass": "首次搬家", "phase.synced": "已于%s同步", "phase.closed": "已于%s关闭",
		"member.failed":    "搬家没有完成。管理员可以看到原因。",
		"member.partial":   "部分邮件没有搬过来。管理员有这些邮件的清单。",
		"member.abandoned": "管理员已结束本次搬家。",
	},
}

// Lang maps a language tag (zh-CN, zh_CN.UTF-8, en-US, ...) to "zh" or "en".
func Lang(tag string) string {
	if strings.HasPrefix(strings.ToLower(tag), "zh") {
		return "zh"
	}
	return "en"
}

// Word is the product's wording of a state name ("running", "succeeded", ...),
// of "counts", or of what a member reads of a move that did not succeed
// ("member." and the state), if key is one of those.
func Word(lang, key string) (string, bool) {
	w, ok := words[Lang(lang)][key]
	return w, ok
}

// Words is a program's own wording (per language, per key), in front of
// which the product's state words always win.
type Words map[string]map[string]string

// Get is the product's word for key, else the program's own, else key itself.
func (w Words) Get(lang, key string) string {
	if s, ok := Word(lang, key); ok {
		return s
	}
	if s, ok := w[Lang(lang)][key]; ok {
		return s
	}
	return key
}

// Text is the job state as the job table says it (R6).
func (s JobState) Text(lang string) string { return words[Lang(lang)][string(s)] }

// Text is the account state as the account list says it (R7).
func (s AccountState) Text(lang string) string { return words[Lang(lang)][string(s)] }

// Line is the counts line (R8), "384 to import, 384 imported, 0 failed"
// (总计需导入384封邮件, 已成功导入384封, 失败0封).
func (c Counts) Line(lang string) string {
	return fmt.Sprintf(words[Lang(lang)]["counts"], c.ToImport, c.Imported, c.Failed)
}
