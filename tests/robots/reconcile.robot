*** Settings ***
Documentation     Two tasks: the first passes, the second fails with a clear message.
Library           interlock_rpa.Outputs

*** Variables ***
${invoiced}       ${120}
${booked}         ${100}

*** Tasks ***
Load invoices
    Set Interlock Output    loaded    ${2}

Reconcile invoices
    Should Be Equal As Integers    ${invoiced}    ${booked}
    ...    msg=Invoice total mismatch: ${invoiced} != ${booked}    values=False
