/** @odoo-module **/
// "Suggest from company" on the sender form (issue 13 §11): puts the suggestion in the record as
// typed, without saving it first. An object button saves before it runs, and a sender whose name
// is empty (new, or cleared) cannot be saved: the button then only said "Invalid fields: Sender".

import { Component } from "@odoo/owl";
import { registry } from "@web/core/registry";
import { useService } from "@web/core/utils/hooks";
import { standardWidgetProps } from "@web/views/widgets/standard_widget_props";

export class SmsSenderSuggest extends Component {
    static template = "sms_marketing_ext.SmsSenderSuggest";
    static props = { ...standardWidgetProps };

    setup() {
        this.orm = useService("orm");
    }

    async onClick() {
        const { record } = this.props;
        const company = record.data.company_id;
        const companyId = Array.isArray(company) ? company[0] : company?.id || false;
        const name = await this.orm.call("sms.sender", "sms_suggest_name", [companyId]);
        await record.update({ name, sender_type: "alphanumeric" });
    }
}

registry.category("view_widgets").add("sms_ext_suggest_sender", {
    component: SmsSenderSuggest,
    fieldDependencies: [
        { name: "company_id", type: "many2one", relation: "res.company" },
        { name: "sender_type", type: "selection" },
    ],
});
